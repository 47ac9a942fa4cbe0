"""Queue an email inside the caller's transaction: the producer's side of the outbox.

Every producer uses :func:`enqueue_email`: ``flask_outbox.Outbox`` for a
Flask-Mail ``Message``, the signup service for its welcome mail, and any
other code for a password reset or a receipt. The row is added
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

from outbox_contract.message import MailMessage, MessageError, max_message_bytes
from outbox_contract.schema import CLAIMABLE, DEDUPE_WHERE, Outbox, OutboxAttachment
from outbox_contract.settings import DEFAULT_SENDER, raw, sender_domain

PRIORITY_RANGE = range(-32768, 32768)  # outbox.priority is a smallint
# INSERT ... ON CONFLICT DO NOTHING on the dedupe key, per dialect, built once:
# building it per call cost a signup about 115 us. Core, returning the id only:
# the ORM's RETURNING of the whole row costs more than the statement itself.
_INSERTS_ONCE = {
    name: dialect_insert(Outbox.__table__)
    .on_conflict_do_nothing(
        index_elements=["dedupe_key"], index_where=text(DEDUPE_WHERE)
    )
    .returning(Outbox.__table__.c.id)
    for name, dialect_insert in (
        ("postgresql", postgresql.insert),
        ("sqlite", sqlite.insert),
    )
}
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
    message: MailMessage | None = None,
    *,
    to: str | None = None,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    message_id_domain: str | None = None,
    priority: int = 0,
    send_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_bytes: int | None = None,
    bypass_suppression: bool = False,
) -> Outbox:
    """Add one email to the outbox in ``session``'s transaction and return its row.

    Pass a whole :class:`~outbox_contract.message.MailMessage` (sender, every
    recipient, Reply-To, headers, attachments), or, for a plain message to one
    recipient, ``to``, ``subject``, ``text`` and optionally ``html``.

    Nothing is sent and nothing is committed here: the caller commits, and the
    mailer sends the row after that commit. The row gets its ``Message-ID`` and
    its ``Date`` now, so every delivery attempt sends the same message.
    ``message_id_domain`` defaults to the domain of ``MAIL_DEFAULT_SENDER``.

    ``priority``: smaller is sent first (default 0). ``send_at``: a timezone-
    aware time before which the mail is not sent. ``dedupe_key``: while a row
    with this key is not yet sent or failed, enqueueing the key again inserts
    nothing and returns that row, even from concurrent transactions.
    ``max_bytes`` defaults to ``OUTBOX_MAX_MESSAGE_BYTES`` (10 MiB).
    ``bypass_suppression``: send even to addresses on the suppression list.

    Raises :class:`~outbox_contract.message.MessageError` (a ValueError) for a
    message that could not be sent safely: a value that could inject headers,
    a header the outbox owns, a malformed address, or too many bytes
    (:class:`~outbox_contract.message.MessageTooLarge`); ``ValueError`` for a
    naive ``send_at`` or a priority outside a smallint. Nothing is written then.
    """
    if message is None:
        if to is None or subject is None or text is None:
            raise TypeError("pass a MailMessage, or to, subject and text")
        if not isinstance(to, str):
            raise MessageError("to must be one email address")
        message = MailMessage.build(subject=subject, to=to, text=text, html=html)
    elif not (to is None and subject is None and text is None and html is None):
        raise TypeError("pass either a MailMessage or to/subject/text/html, not both")
    if priority not in PRIORITY_RANGE:
        raise ValueError("priority must fit a smallint (-32768 to 32767)")
    if send_at is not None and send_at.tzinfo is None:
        raise ValueError("send_at must be timezone-aware")
    message.check_size(max_message_bytes() if max_bytes is None else max_bytes)
    values: dict[str, Any] = {
        "recipient": message.recipients[0].address,
        "subject": message.subject,
        "body_text": message.text,
        "body_html": message.html,
        "message_id": new_message_id(message_id_domain or default_message_id_domain()),
        "message": message.to_json(message.date or datetime.now(UTC)),
        "priority": priority,
        "dedupe_key": dedupe_key,
        "bypass_suppression": bypass_suppression,
    }
    if send_at is not None:
        values["available_at"] = send_at.astimezone(UTC)
    if dedupe_key is None:
        # An INSERT now rather than session.add(): the unit of work's flush
        # costs more than the statement, on every signup.
        row_id = session.connection().execute(_INSERT, values).scalar_one()
        row, inserted = Outbox(id=row_id, **values), True
    else:
        row, inserted = _enqueue_once(session, values)
    if inserted and message.attachments:
        _add_attachments(session, row.id, message)
    return row


def _add_attachments(session: Session, outbox_id: int, message: MailMessage) -> None:
    """Insert the message's attachments, in order, beside its row."""
    session.connection().execute(
        insert(OutboxAttachment.__table__),
        [
            {
                "outbox_id": outbox_id,
                "position": position,
                "filename": part.filename,
                "content_type": part.content_type,
                "disposition": part.disposition,
                "headers": [list(pair) for pair in part.headers] or None,
                "content": part.content,
            }
            for position, part in enumerate(message.attachments)
        ],
    )


def _enqueue_once(session: Session, values: dict[str, Any]) -> tuple[Outbox, bool]:
    """Insert unless the dedupe key is queued already; return (row, inserted)."""
    statement = _INSERTS_ONCE[session.get_bind().dialect.name]
    # The conflicting row can be sent (and so leave the key free) between the
    # two statements: then the insert goes through on the next try.
    for _ in range(3):
        row_id = session.connection().execute(statement, values).scalar_one_or_none()
        if row_id is not None:
            return Outbox(id=row_id, **values), True
        existing = select(Outbox).where(
            Outbox.dedupe_key == values["dedupe_key"], Outbox.status.in_(CLAIMABLE)
        )
        row = session.scalars(existing).one_or_none()
        if row is not None:
            return row, False
    raise RuntimeError(f"dedupe key {values['dedupe_key']!r} kept changing hands")
