"""Named SQL blocks: ``queries/<stem>.sql`` read once, each statement by its name.

A block starts ``-- name: claim_due --``, then one-line comments, then the
statement (Procrastinate's layout). Parameters named ``ids`` or ``addresses``
bind a list: ``WHERE id IN :ids``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from sqlalchemy import TextClause, bindparam, text

_BLOCK = re.compile(
    r"^-- name: (\w+) --\n(?:--[^\n]*\n)*(.*?)(?=^-- name: |\Z)", re.M | re.S
)
_EXPANDING = ("ids", "addresses")  # parameters bound as lists: ``id IN :ids``


@cache
def load_queries(stem: str) -> dict[str, TextClause]:
    """Return the statements of ``queries/<stem>.sql`` by name."""
    source = files("mailer_service").joinpath("queries", f"{stem}.sql").read_text()
    queries = {}
    for name, body in _BLOCK.findall(source):
        clause = text(body.strip().rstrip(";"))
        expanding = [p for p in _EXPANDING if f":{p}" in body]
        if expanding:
            clause = clause.bindparams(
                *(bindparam(p, expanding=True) for p in expanding)
            )
        queries[name] = clause
    return queries
