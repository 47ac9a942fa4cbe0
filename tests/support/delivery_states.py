"""An outbox with a row in every delivery state, and the users some belong to.

The SQL in docs/operations.md (tests/sql) and the outbox_summary view are checked
against it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from outbox_contract import Outbox, User
from outbox_contract.schema import OutboxAttempt

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

USERS = {1: "ada@example.com", 2: "grace@example.com", 3: "linus@example.com"}
# id: (status, user_id, available_at offset from now, attempts, last_error)
ROWS = {
    1: ("sent", 1, -2 * DAY, 1, None),
    2: ("pending", 2, -3 * HOUR, 2, "421 busy"),  # the oldest due row
    3: ("pending", 3, -HOUR, 0, None),
    4: ("pending", None, +DAY, 1, "451 try later"),  # not due yet
    5: ("failed", None, -20 * MINUTE, 10, "421 busy"),  # out of attempts
    6: ("failed", None, -3 * DAY, 1, "550 5.1.1 no such user"),
    7: ("sending", None, -MINUTE, 0, None),  # leased until now + 2 minutes
    8: ("sending", None, -HOUR, 0, None),  # lease expired 10 minutes ago
}
SENT_AT = -2 * DAY + MINUTE  # row 1's delivery
# Row 3 is a whole message with Ada in Cc, who was refused; the rest are plain.
CC_ADA = {
    "v": 1,
    "from": None,
    "to": [{"name": "", "address": "linus@example.com"}],
    "cc": [{"name": "Ada", "address": "ada@example.com"}],
    "bcc": [],
    "reply_to": None,
    "date": "2026-12-01T09:00:00Z",
    "headers": [],
    "attachments": 0,
}
MESSAGES = {3: CC_ADA}
REFUSED = {3: {"ada@example.com": [550, "5.1.1 no such user"]}}
LEASES = {7: ("worker-alive", 2 * MINUTE), 8: ("worker-dead", -10 * MINUTE)}


def seed_every_state(engine: Engine) -> datetime:
    """Insert USERS and ROWS with times relative to now; return that now."""
    now = datetime.now(UTC)
    outbox = []
    for row_id, (status, user_id, due, attempts, error) in ROWS.items():
        worker, lease = LEASES.get(row_id, (None, None))
        outbox.append(
            {
                "id": row_id,
                "created_at": now + due,
                "available_at": now + due,
                "status": status,
                "recipient": USERS.get(user_id, f"other{row_id}@example.com"),
                "subject": "Welcome aboard!",
                "body_text": "Hello",
                "message_id": f"<{row_id}@example.com>",
                "attempts": attempts,
                "last_error": error,
                "sent_at": now + SENT_AT if status == "sent" else None,
                "last_attempt_at": now + due if attempts else None,
                "locked_by": worker,
                "locked_until": None if lease is None else now + lease,
                "dedupe_key": None if user_id is None else f"welcome:{user_id}",
                "message": MESSAGES.get(row_id),
                "refused": REFUSED.get(row_id),
            }
        )
    users = [
        {"id": i, "email": e, "created_at": now - 3 * DAY} for i, e in USERS.items()
    ]
    with engine.begin() as connection:
        connection.execute(User.__table__.insert(), users)
        connection.execute(Outbox.__table__.insert(), outbox)
        connection.execute(OutboxAttempt.__table__.insert(), attempts_of_row_6(now))
    return now


def attempts_of_row_6(now: datetime) -> list[dict]:
    """Row 6's one attempt: the hard bounce that failed it."""
    at = now - 3 * DAY
    return [
        {
            "outbox_id": 6,
            "attempt": 1,
            "started_at": at,
            "ended_at": at,
            "worker": "worker-dead",
            "result": "failed",
            "smtp_code": 550,
            "enhanced_code": "5.1.1",
            "error": "550 5.1.1 no such user",
        }
    ]
