"""Put rows into the outbox and read them back (users too), as the SQL users would."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import URL, DateTime, Engine, bindparam, create_engine, text
from sqlalchemy.pool import NullPool

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def seed_outbox(engine: Engine, count: int, prefix: str = "r") -> list[int]:
    """Insert ``count`` pending rows addressed to ``<prefix><n>@example.com``."""
    rows = [
        {
            "recipient": f"{prefix}{n}@example.com",
            "subject": f"Hello {n}",
            "body_text": f"Text body {n}",
            "body_html": f"<p>HTML body {n}</p>",
            "message_id": f"<{uuid.uuid4().hex}@example.com>",
        }
        for n in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox"
                " (recipient, subject, body_text, body_html, message_id)"
                " VALUES (:recipient, :subject, :body_text, :body_html, :message_id)"
            ),
            rows,
        )
        ids = connection.execute(text("SELECT id FROM outbox ORDER BY id")).scalars()
        return list(ids)[-count:]


def outbox_rows(engine: Engine) -> list[dict]:
    """Return every outbox row as a dict, in id order."""
    with engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM outbox ORDER BY id"))
        return [dict(row) for row in result.mappings()]


def outbox_columns(url: URL, *columns: str) -> list[tuple]:
    """Return ``columns`` of every outbox row at ``url``, in id order.

    A short-lived engine of its own reads what another process wrote there.
    """
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            query = text(f"SELECT {', '.join(columns)} FROM outbox ORDER BY id")
            return [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()


def rows(engine: Engine, sql: str) -> list[tuple]:
    """Return every row ``sql`` selects."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def counts(engine: Engine) -> tuple[int, int]:
    """Return (users, outbox rows)."""
    return (
        rows(engine, "SELECT count(*) FROM users")[0][0],
        rows(engine, "SELECT count(*) FROM outbox")[0][0],
    )


def all_sent(engine: Engine, count: int) -> Callable[[], bool]:
    """Return a predicate: ``count`` rows exist and every one is sent."""
    return lambda: status_counts(engine) == {"sent": count}


def status_counts(engine: Engine) -> dict[str, int]:
    """Return the number of rows in each status."""
    with engine.connect() as connection:
        result = connection.execute(
            text("SELECT status, count(*) FROM outbox GROUP BY status")
        )
        return dict(result.all())


def set_timestamp(
    engine: Engine, column: str, when: datetime, where: str = "1=1"
) -> None:
    """Move ``column`` of the matching rows to ``when``: time travel for leases."""
    statement = text(f"UPDATE outbox SET {column} = :when WHERE {where}").bindparams(
        bindparam("when", type_=DateTime(timezone=True))
    )
    with engine.begin() as connection:
        connection.execute(statement, {"when": when})
