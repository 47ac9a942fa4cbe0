"""The operator side's one way into the outbox: an engine, the SQL by purpose.

The admin CLI (``outbox``), the status page and retention reach the database
through here; the delivery pipeline through :mod:`mailer_service.store`. The
SQL lives in ``queries/``, one file per purpose and dialect:

- ``delivery_<dialect>.sql``: the mailer's claim, leases and outcomes;
- ``inspect_<dialect>.sql``: what operators read (show, mailed, the status page);
- ``repair_<dialect>.sql``: what operators change (retry, requeue, suppress);
- ``retention_<dialect>.sql``: purge and redact, a batch per transaction.

Rows per status is the contract's one statement
(:func:`outbox_contract.summary.read_summary`), which the queue gauges read too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import click
from sqlalchemy import Engine, TextClause
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from mailer_service.sql import load_queries
from outbox_contract.database import first_line, make_engine
from outbox_contract.settings import ConfigError

OPERATOR_PURPOSES = ("inspect", "repair", "retention")


@cache
def operator_queries(dialect: str) -> dict[str, TextClause]:
    """Return every statement the operator tools run on ``dialect``, by name."""
    merged: dict[str, TextClause] = {}
    for purpose in OPERATOR_PURPOSES:
        merged.update(load_queries(f"{purpose}_{dialect}"))
    return merged


@contextmanager
def cli_database() -> Iterator[tuple[Engine, dict[str, TextClause]]]:
    """Yield an engine on ``DATABASE_URL`` and the operator SQL for its dialect.

    Only ``DATABASE_URL`` is read: a bad ``MAIL_*`` value must not keep an
    operator from looking at the outbox. Database errors become one short line.
    """
    try:
        engine = make_engine(poolclass=NullPool)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    try:
        yield engine, operator_queries(engine.dialect.name)
    except SQLAlchemyError as err:
        # The driver's own first line names the problem; SQLAlchemy's wrapper
        # adds the statement and a link, too much for a terminal.
        raise click.ClickException(f"database error: {first_line(err)}") from None
    finally:
        engine.dispose()
