"""Rows for the status page: a known spread over the last hour, and hostile text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from outbox_contract import Outbox

HOSTILE_RECIPIENT = "<script>window.pwned=1</script>@example.com"
HOSTILE_ERROR = "550 <script>window.pwned=2</script> <img src=x onerror=alert(1)>"
LOOKED_UP = "ada@example.com"  # two rows: one sent, one failed
# minutes ago (each +30 s, away from a minute's edge): (sent, failed) that minute
NEVER_TRIED = {"attempts": 0, "last_attempt_at": None}
SPREAD = {0: (2, 0), 3: (5, 1), 4: (1, 0), 17: (0, 2), 30: (3, 0), 59: (4, 1)}


def _row(status: str, recipient: str, at: datetime, **values: object) -> dict:
    """Return one outbox row in ``status`` whose last attempt was ``at``."""
    return {
        "created_at": at - timedelta(seconds=5),
        "available_at": at - timedelta(seconds=5),
        "status": status,
        "recipient": recipient,
        "subject": "Welcome aboard!",
        "body_text": "Hello",
        "message_id": f"<{uuid.uuid4().hex}@example.com>",
        "attempts": 1,
        "last_attempt_at": at,
        "sent_at": at if status == "sent" else None,
        "last_error": None,
        "locked_by": None,
        "locked_until": None,
        **values,
    }


def seed_status_rows(engine: Engine) -> datetime:
    """Insert SPREAD, old rows, a backlog, hostile text and LOOKED_UP; return now."""
    now = datetime.now(UTC)
    rows = []
    for minutes, (sent, failed) in SPREAD.items():
        at = now - timedelta(minutes=minutes, seconds=30)
        rows += [_row("sent", f"s{minutes}-{n}@example.com", at) for n in range(sent)]
        rows += [
            _row("failed", f"f{minutes}-{n}@example.com", at, last_error="554 no")
            for n in range(failed)
        ]
    two_hours_ago = now - timedelta(hours=2)
    rows += [
        _row("sent", "old@example.com", now - timedelta(days=2)),  # off the chart
        # Due for two hours (available_at is 5 s before the time given).
        _row("pending", "due@example.com", two_hours_ago, **NEVER_TRIED),
        _row("pending", "later@example.com", now + timedelta(hours=1), **NEVER_TRIED),
        _row(
            "sending",
            "busy@example.com",
            now,
            locked_by="worker-1",
            locked_until=now + timedelta(minutes=2),
        ),
        _row(
            "failed",
            HOSTILE_RECIPIENT,
            now - timedelta(minutes=8, seconds=30),
            last_error=HOSTILE_ERROR,
        ),
        _row("sent", LOOKED_UP, now - timedelta(days=1)),
        _row(
            "failed",
            LOOKED_UP,
            now - timedelta(days=3),
            last_error="550 5.1.1 <ada@example.com> no such user",
        ),
    ]
    with engine.begin() as connection:
        connection.execute(Outbox.__table__.insert(), rows)
    return now
