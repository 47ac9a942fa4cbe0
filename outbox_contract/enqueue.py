"""Queue an email inside the caller's transaction: the producer's side of the outbox.

Every producer uses :func:`enqueue_email`: the signup service for its welcome
mail, and any other code for a password reset or a receipt. The row is added
to the caller's session, so it commits (or rolls back) with the caller's own
writes; the mailer delivers it once that transaction has committed.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy.orm import Session

from outbox_contract.schema import Outbox
from outbox_contract.settings import DEFAULT_SENDER, raw, sender_domain

_UNSAFE = ("\r", "\n", "\0")  # would let a value add or split headers


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
) -> Outbox:
    """Add one email to the outbox in ``session``'s transaction and return its row.

    Nothing is sent and nothing is committed here: the caller commits, and the
    mailer sends the row after that commit. The row gets its ``Message-ID``
    now, so every delivery attempt carries the same one. ``message_id_domain``
    defaults to the domain of ``MAIL_DEFAULT_SENDER``. Raises ``ValueError`` for
    a recipient or subject that could inject headers.
    """
    if not isinstance(to, str) or "@" not in to or any(c in to for c in _UNSAFE):
        raise ValueError("to must be one email address, without CR, LF or NUL")
    if not subject or any(c in subject for c in _UNSAFE):
        raise ValueError("subject must be one non-empty line")
    row = Outbox(
        recipient=to,
        subject=subject,
        body_text=text,
        body_html=html,
        message_id=new_message_id(message_id_domain or default_message_id_domain()),
        user_id=user_id,
    )
    session.add(row)
    return row
