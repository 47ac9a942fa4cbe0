"""Rows for the status page: a known spread over the last hour, and hostile text.

``seed_action_rows`` adds rows for the page's actions: a whole failed message
with its attempt history and a suppressed recipient, a pending row, a sent one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from outbox_contract import Outbox, enqueue_email
from outbox_contract.message import Attachment, MailMessage
from outbox_contract.schema import OutboxAttempt, Suppression

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


ADMIN_TOKEN = "status-page-admin-token-0123456789abcdef"  # 40 characters
BOUNCED = "Bounced@Example.com"  # a Cc of the failed row, on the suppression list
ALSO_SUPPRESSED = "gone@example.org"  # on the list, in no row
RECEIPT = MailMessage.build(
    subject="Your receipt",
    to=[("Ada Lovelace", "ada.l@example.com")],
    cc=[BOUNCED],
    bcc=["audit@example.com"],
    sender=("Shop", "shop@example.com"),
    reply_to="help@example.com",
    headers={"X-Campaign": "receipts"},
    text="Thank you.",
    attachments=(Attachment(b"%PDF" + b"0" * 2044, "application/pdf", "r.pdf"),),
)


@dataclass(frozen=True)
class ActionRows:
    """The ids of the rows seed_action_rows adds."""

    failed: int  # the whole RECEIPT, two attempts, BOUNCED refused and suppressed
    pending: int
    sent: int


def seed_action_rows(engine: Engine) -> ActionRows:
    """Add a failed whole message with history, a pending row and a sent row."""
    now = datetime.now(UTC)
    refused = {BOUNCED.lower(): [550, "5.1.1 user unknown"]}
    with Session(engine) as session:
        failed = enqueue_email(session, RECEIPT, message_id_domain="example.com").id
        pending = enqueue_email(
            session, to="wait@example.com", subject="Later", text="Hi"
        ).id
        sent = enqueue_email(session, to="done@example.com", subject="Done", text="Hi")
        session.execute(
            update(Outbox)
            .where(Outbox.id == failed)
            .values(
                status="failed",
                attempts=2,
                last_attempt_at=now - timedelta(minutes=1),
                last_error="554 5.7.1 rejected",
                refused=refused,
            )
        )
        session.execute(
            update(Outbox)
            .where(Outbox.id == sent.id)
            .values(status="sent", attempts=1, sent_at=now, last_attempt_at=now)
        )
        session.execute(
            OutboxAttempt.__table__.insert(),
            [
                _attempt(failed, 1, now - timedelta(minutes=5), "retry", 451,
                         "4.3.0", "451 4.3.0 try later", None),
                _attempt(failed, 2, now - timedelta(minutes=1), "failed", 554,
                         "5.7.1", "554 5.7.1 rejected", refused),
            ],
        )  # fmt: skip
        session.execute(
            Suppression.__table__.insert(),
            [
                {"address": BOUNCED.lower(), "reason": "bounce", "smtp_code": 550,
                 "enhanced_code": "5.1.1", "detail": "user unknown", "created_at": now},
                {"address": ALSO_SUPPRESSED, "reason": "manual", "smtp_code": None,
                 "enhanced_code": None, "detail": "asked", "created_at": now},
            ],
        )  # fmt: skip
        session.commit()
    return ActionRows(failed=failed, pending=pending, sent=sent.id)


def _attempt(
    outbox_id: int,
    attempt: int,
    at: datetime,
    result: str,
    code: int,
    enhanced: str,
    error: str,
    refused: dict | None,
) -> dict:
    """Return one outbox_attempts row, a second long."""
    return {
        "outbox_id": outbox_id,
        "attempt": attempt,
        "started_at": at,
        "ended_at": at + timedelta(seconds=1),
        "worker": "worker-1",
        "result": result,
        "smtp_code": code,
        "enhanced_code": enhanced,
        "error": error,
        "refused": refused,
    }
