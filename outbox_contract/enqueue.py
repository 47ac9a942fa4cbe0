"""Queue an email inside the caller's transaction: the producer's side of the outbox.

Every producer uses :func:`enqueue_email`: the signup service for its welcome
mail, and any other code for a password reset or a receipt. The row is added
to the caller's session, so it commits (or rolls back) with the caller's own
writes; the mailer delivers it once that transaction has committed.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outbox_contract.schema import CLAIMABLE, DEDUPE_WHERE, Outbox
from outbox_contract.settings import DEFAULT_SENDER, raw, sender_domain

_UNSAFE = ("\r", "\n", "\0")  # would let a value add or split headers
PRIORITY_RANGE = range(-32768, 32768)  # outbox.priority is a smallint
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# Built once: SQLAlchemy compiles it once, and each call only binds its values.
_INSERT = insert(Outbox.__table__).returning(Outbox.__table__.c.id)


def new_message_id(domain: str) -> str:
    """Return a globally unique Message-ID, fixed for every delivery attempt."""
    return f"<{uuid.uuid4().hex}@{domain}>"


def default_message_id_domain() -> str:
    """Return the domain of ``MAIL_DEFAULT_SENDER``, as the mailer will send from."""
    return sender_domain(raw(os.environ, "MAIL_DEFAULT_SENDER") or DEFAULT_SENDER)


def enqueue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    user_id: int | None = None,
    message_id_domain: str | None = None,
    priority: int = 0,
    send_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> Outbox:
    """Add one email to the outbox in ``session``'s transaction and return its row.

    Nothing is sent and nothing is committed here: the caller commits, and the
    mailer sends the row after that commit. The row gets its ``Message-ID``
    now, so every delivery attempt carries the same one. ``message_id_domain``
    defaults to the domain of ``MAIL_DEFAULT_SENDER``.

    ``priority``: smaller is sent first (default 0). ``send_at``: a timezone-
    aware time before which the mail is not sent. ``dedupe_key``: while a row
    with this key is not yet sent or failed, enqueueing the key again inserts
    nothing and returns that row, even from concurrent transactions.

    Raises ``ValueError`` for a recipient or subject that could inject headers,
    a naive ``send_at`` or a priority outside a smallint.
    """
    if not isinstance(to, str) or "@" not in to or any(c in to for c in _UNSAFE):
        raise ValueError("to must be one email address, without CR, LF or NUL")
    if not subject or any(c in subject for c in _UNSAFE):
        raise ValueError("subject must be one non-empty line")
    if priority not in PRIORITY_RANGE:
        raise ValueError("priority must fit a smallint (-32768 to 32767)")
    values: dict[str, Any] = {
        "recipient": to,
        "subject": subject,
        "body_text": text,
        "body_html": html,
        "message_id": new_message_id(message_id_domain or default_message_id_domain()),
        "user_id": user_id,
        "priority": priority,
        "dedupe_key": dedupe_key,
    }
    if send_at is not None:
        if send_at.tzinfo is None:
            raise ValueError("send_at must be timezone-aware")
        values["available_at"] = send_at.astimezone(UTC)
    if dedupe_key is None:
        # An INSERT now rather than session.add(): the unit of work's flush
        # costs more than the statement, on every signup.
        row_id = session.connection().execute(_INSERT, values).scalar_one()
        return Outbox(id=row_id, **values)
    return _enqueue_once(session, values)


def _enqueue_once(session: Session, values: dict[str, Any]) -> Outbox:
    """Insert unless the dedupe key is queued already; return the queued row."""
    insert = _INSERTS[session.get_bind().dialect.name]
    statement = (
        insert(Outbox)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["dedupe_key"], index_where=text(DEDUPE_WHERE)
        )
        .returning(Outbox)
    )
    existing = select(Outbox).where(
        Outbox.dedupe_key == values["dedupe_key"], Outbox.status.in_(CLAIMABLE)
    )
    # The conflicting row can be sent (and so leave the key free) between the
    # two statements: then the insert goes through on the next try.
    for _ in range(3):
        row = session.scalars(statement).one_or_none()
        if row is None:
            row = session.scalars(existing).one_or_none()
        if row is not None:
            return row
    raise RuntimeError(f"dedupe key {values['dedupe_key']!r} kept changing hands")
