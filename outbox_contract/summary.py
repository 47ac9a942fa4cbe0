"""Rows per status, read once: the queue gauges, ``outbox stats`` and the status page.

The ``outbox_summary`` view (the outbox migrations) does the counting on
either database; this is the one statement that reads it, so the three views
of the queue cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from outbox_contract.schema import STATUSES

# Portable SQL: the view has the same columns on PostgreSQL and SQLite.
SUMMARY = text(
    "SELECT status, total, oldest_due_age_seconds, failed_last_hour FROM outbox_summary"
)


def read_summary(connection: Connection) -> list[dict[str, Any]]:
    """Return one dict per status, in lifecycle order (pending first).

    Each has ``status``, ``total``, ``oldest_due_age_seconds`` (pending only:
    how long the oldest due row has waited) and ``failed_last_hour`` (failed
    only). A status this code does not know sorts last, by name.
    """
    rows = [row._asdict() for row in connection.execute(SUMMARY)]
    known = {status: n for n, status in enumerate(STATUSES)}
    return sorted(rows, key=lambda r: (known.get(r["status"], len(known)), r["status"]))
