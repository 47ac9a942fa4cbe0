"""Plain psycopg access for the measurements: the outbox's state, read directly.

The mailer figures are counted in the database, not on the SMTP server:
smtp-sink keeps no messages, and ``outbox.sent_at`` is written by the mailer
right after each 250, on the database clock every mailer shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from sqlalchemy.engine import make_url

from bench.messages import rate


def libpq_url(url: str) -> str:
    """Return ``url`` (maybe ``postgresql+psycopg://``) as libpq understands it."""
    return (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def connect(url: str) -> psycopg.Connection:
    """Open an autocommit connection: every statement is its own transaction."""
    return psycopg.connect(libpq_url(url), autocommit=True)


@dataclass(frozen=True)
class OutboxTally:
    """The outbox after a drain: rows per status and the span of ``sent_at``."""

    statuses: dict[str, int]
    first_sent: datetime | None
    last_sent: datetime | None
    attempts: int  # delivery attempts recorded over all rows

    @property
    def sent(self) -> int:
        """Return how many rows are ``sent``."""
        return self.statuses.get("sent", 0)

    @property
    def total(self) -> int:
        """Return how many rows the outbox holds."""
        return sum(self.statuses.values())

    @property
    def span(self) -> float:
        """Return seconds from the first ``sent_at`` to the last."""
        if self.first_sent is None or self.last_sent is None:
            return 0.0
        return (self.last_sent - self.first_sent).total_seconds()

    @property
    def per_second(self) -> float:
        """Return sent rows / (max(sent_at) - min(sent_at))."""
        return rate(self.sent, self.span)


def tally(url: str) -> OutboxTally:
    """Count the outbox's rows per status and read the span of ``sent_at``."""
    with connect(url) as connection:
        statuses = dict(
            connection.execute(
                "SELECT status, count(*) FROM outbox GROUP BY status"
            ).fetchall()
        )
        first, last, attempts = connection.execute(
            "SELECT min(sent_at), max(sent_at), coalesce(sum(attempts), 0) FROM outbox"
        ).fetchone() or (None, None, 0)
    return OutboxTally(statuses, first, last, int(attempts))


def count_unfinished(connection: psycopg.Connection) -> int:
    """Return how many outbox rows are still ``pending`` or ``sending``."""
    row = connection.execute(
        "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
    ).fetchone()
    return int(row[0]) if row else 0
