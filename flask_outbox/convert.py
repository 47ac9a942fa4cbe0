"""Turn a Flask-Mail ``Message`` into the outbox's checked ``MailMessage``, exactly.

Every field Flask-Mail can put on the wire is carried over; a field the outbox
cannot deliver as asked (another alternative part than HTML, another charset
than UTF-8, ESMTP options) is refused with :class:`MessageError` rather than
dropped, so nobody finds out later that the mail went out differently.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask_mail import Attachment as FlaskAttachment
from flask_mail import Message

from outbox_contract.message import Address, Attachment, MailMessage, MessageError

UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8"})  # what Python calls UTF-8
# What Flask-Mail's constructor makes of a (name, address) sender:
# f"{name} <{address}>", unquoted, so a name such as "Doe, John" no longer
# parses. A plain name (no quote, backslash or comment) is read back as is.
_FLASK_MAIL_SENDER = re.compile(r'^(?P<name>[^"\\()<>]*?) <(?P<address>[^<>\s]+)>$')


def to_mail_message(message: Message) -> MailMessage:
    """Return ``message`` as a MailMessage; raise MessageError for what won't fit."""
    _refuse_unsupported(message)
    return MailMessage.build(
        subject=message.subject,
        to=list(message.recipients),
        cc=list(message.cc or ()),
        bcc=list(message.bcc or ()),
        sender=parse_sender(message.sender),
        reply_to=message.reply_to or None,
        headers=message.extra_headers,
        text=message.body or "",
        html=message.html,
        date=_date(message.date),
        attachments=tuple(_attachment(part) for part in message.attachments),
    )


def parse_sender(value: str | tuple[str, str] | None) -> Address | None:
    """Read a sender, including the ``Name <addr>`` form Flask-Mail makes of a pair."""
    if not value:
        return None  # the mailer's MAIL_DEFAULT_SENDER
    if isinstance(value, str):
        match = _FLASK_MAIL_SENDER.match(value)
        if match and match["name"].strip():
            return Address(address=match["address"], name=match["name"].strip())
    return Address.parse(value)


def _refuse_unsupported(message: Message) -> None:
    """Raise MessageError for a field the outbox would otherwise drop silently."""
    others = sorted(mimetype for mimetype in message.alts if mimetype != "html")
    if others:
        raise MessageError(
            f"alternative part {others[0]!r} is not supported; only html is"
        )
    if message.charset is not None and message.charset.lower() not in UTF8_NAMES:
        raise MessageError(
            f"charset {message.charset!r} is not supported; the outbox sends utf-8"
        )
    if message.mail_options:
        raise MessageError("mail_options (ESMTP MAIL FROM options) are not supported")
    if message.rcpt_options:
        raise MessageError("rcpt_options (ESMTP RCPT options) are not supported")


def _date(value: Any) -> datetime | None:
    """Read Flask-Mail's date, a POSIX timestamp, as an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value  # MailMessage refuses a naive datetime itself
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    raise MessageError(f"date must be a timestamp, got {value!r}")


def _attachment(part: FlaskAttachment) -> Attachment:
    """Convert one Flask-Mail attachment; text data is stored as UTF-8 bytes."""
    data = part.data.encode() if isinstance(part.data, str) else bytes(part.data)
    return Attachment(
        content=data,
        content_type=part.content_type,
        filename=part.filename,
        disposition=part.disposition,
        headers=tuple((part.headers or {}).items()),
    )
