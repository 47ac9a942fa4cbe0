"""The admin CLI's test data: a row in every state, and ``outbox`` run in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner, Result
from sqlalchemy import URL, Engine

from mailer_service.admin import cli
from outbox_contract import Outbox
from tests.support.databases import url_string

HOUR, DAY = timedelta(hours=1), timedelta(days=1)

# id: (status, available_at offset from now, sent_at offset, attempts, last_error)
ROWS = {
    1: ("pending", -2 * HOUR, None, 0, None),
    2: ("pending", +HOUR, None, 1, "421 try again later"),  # not due yet
    3: ("sending", -60 * DAY, None, 1, None),  # leased, old: never purged
    4: ("sent", -40 * DAY, -40 * DAY, 1, None),
    5: ("sent", -31 * DAY, -31 * DAY, 1, None),
    6: ("sent", -35 * DAY, -35 * DAY, 2, "451 greylisted"),
    7: ("sent", -DAY, -DAY, 1, None),  # recent: kept by a 30d purge
    8: ("failed", -10 * timedelta(minutes=1), None, 10, "550 no such user"),
    9: ("failed", -60 * DAY, None, 3, "554 rejected"),
    10: ("sent", -45 * DAY, -45 * DAY, 1, None),
    11: ("sent", -50 * DAY, -50 * DAY, 1, None),
}
OLD_SENT = {4, 5, 6, 10, 11}


def seed(engine: Engine) -> datetime:
    """Insert ROWS with times relative to now; return that now."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": row_id,
            "created_at": now + due,
            "available_at": now + due,
            "status": status,
            "recipient": f"user{row_id}@example.com",
            "subject": "Welcome aboard!",
            "body_text": "Hello",
            "message_id": f"<{row_id}@example.com>",
            "attempts": attempts,
            "last_error": error,
            "sent_at": None if sent is None else now + sent,
            "last_attempt_at": now + due if attempts else None,
            "locked_by": "worker-1" if status == "sending" else None,
            "locked_until": now + 2 * HOUR if status == "sending" else None,
        }
        for row_id, (status, due, sent, attempts, error) in ROWS.items()
    ]
    with engine.begin() as connection:
        connection.execute(Outbox.__table__.insert(), rows)
    return now


def snapshot(engine: Engine) -> dict[int, dict]:
    """Return every outbox row by id, for before/after comparisons."""
    with engine.connect() as connection:
        # Through the table, so SQLite's text timestamps come back as datetimes.
        table = Outbox.__table__
        result = connection.execute(table.select().order_by(table.c.id))
        return {row["id"]: dict(row) for row in result.mappings()}


def outbox(url: URL, *args: str, **env: str) -> Result:
    """Run ``outbox ARGS`` in-process against ``url``; crashes fail the test."""
    result = CliRunner().invoke(
        cli, list(args), env={"DATABASE_URL": url_string(url), **env}
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result
