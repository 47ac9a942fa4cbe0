"""Rebuild a stored outbox row as the Flask-Mail message that goes on the wire.

Flask-Mail builds the MIME structure; :class:`OutboxMessage` corrects the
three things it gets wrong for a queue that must send what it was given:

- Flask-Mail sends an ASCII part ``7bit`` whatever its line length, so a
  2,000-character line of minified HTML breaks RFC 5322's 998-octet limit (a
  strict server refuses it, postfix folds it and breaks links). Such a part
  goes quoted-printable instead, as Django does.
- ``sanitize_address`` turns the sender tuple ``("Doe, John", addr)`` into
  ``Doe``, and ``To`` comes out of a set in any order. The address headers are
  written from the stored pairs, in order, exactly.
- ``extra_headers`` is a dict, so a header given twice would be lost.

Writing those headers costs little: a short ASCII value is stored as the plain
string it will be sent as, and only a value that needs RFC 2047 encoding or
folding goes through the SMTP policy's header parser (a profile of one mailer
found that parser a tenth of its time per message).
"""

from __future__ import annotations

import json
from email import charset as email_charset
from email import policy as email_policy
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from email.utils import parseaddr
from typing import Any

import flask_mail
from flask import current_app
from flask_mail import Attachment as MailAttachment
from flask_mail import Message

from mailer_service.store import ClaimedRow
from mailer_service.wire import FOLD_AT, flatten
from outbox_contract.message import MAX_LINE, Address, StoredEnvelope


def _placeholder_message_id() -> str:
    """Stand in for the Message-ID that :func:`build_message` replaces anyway."""
    return "<placeholder@outbox.invalid>"


# Flask-Mail's Message() calls email.utils.make_msgid() for every message, and
# that calls socket.getfqdn(): a reverse DNS lookup per message, slow on hosts
# with slow DNS. Every outbox row carries its own Message-ID, so skip it.
flask_mail.make_msgid = _placeholder_message_id


def set_header(message: MIMEBase, name: str, value: str) -> None:
    """Add a header to ``message``, whose policy is Flask-Mail's SMTP policy.

    An ASCII value is folded here, at FOLD_AT, and stored as the plain string
    it is sent as. The SMTP policy would parse it instead, and its refolding
    drops the quotes of a long display name with a comma in it
    (``"Doe, John ..." <jd@example.com>`` arrives as two addresses). Any other
    value is parsed by the SMTP policy, which encodes it (RFC 2047) at sending.
    """
    if value.isascii():
        folded = Header(value, header_name=name, maxlinelen=FOLD_AT).encode()
        message.policy = email_policy.compat32
        try:
            message[name] = folded
        finally:
            message.policy = email_policy.SMTP
    else:
        message[name] = value


def needs_transfer_encoding(text: str) -> bool:
    """Tell whether some line of ``text`` is longer than SMTP allows (998 octets)."""
    return any(len(line.encode()) > MAX_LINE for line in text.splitlines())


def quoted_printable(text: str, subtype: str) -> MIMEText:
    """Return a UTF-8 text part in quoted-printable, whose lines stay short."""
    charset = email_charset.Charset("utf-8")
    charset.body_encoding = email_charset.QP
    return MIMEText(text, _subtype=subtype, _charset=charset)  # type: ignore[arg-type]


class OutboxMessage(Message):
    """A Flask-Mail message whose headers and line lengths are what was queued."""

    envelope: StoredEnvelope
    display_sender: Address

    def as_bytes(self) -> bytes:
        """Return the message as sent: Flask-Mail's bytes, written faster."""
        return flatten(self._message())

    def _mimetext(self, text: str | None, subtype: str = "plain") -> MIMEText:
        """Make a text part, quoted-printable when a line is too long for 7bit."""
        if text and needs_transfer_encoding(text):
            return quoted_printable(text, subtype)
        return super()._mimetext(text, subtype)

    def _message(self) -> MIMEBase:
        """Build the MIME message, then write the address headers exactly."""
        message = super()._message()
        envelope = self.envelope
        for name in ("From", "To", "Cc", "Reply-To"):
            del message[name]
        set_header(message, "From", self.display_sender.formatted())
        if envelope.to:
            set_header(message, "To", ", ".join(a.formatted() for a in envelope.to))
        if envelope.cc:
            set_header(message, "Cc", ", ".join(a.formatted() for a in envelope.cc))
        if envelope.reply_to:
            set_header(message, "Reply-To", envelope.reply_to.formatted())
        for name, value in envelope.headers:
            set_header(message, name, value)
        return message


def default_sender() -> Address:
    """Return ``MAIL_DEFAULT_SENDER`` as an address with its display name."""
    name, address = parseaddr(current_app.extensions["mail"].default_sender)
    return Address(address=address, name=name)


def build_message(row: ClaimedRow, attachments: list[Any]) -> OutboxMessage:
    """Build the message for ``row``, with its Message-ID and its Date, fixed."""
    envelope = StoredEnvelope.from_row(row.recipient, row.message)
    sender = envelope.sender or default_sender()
    date = envelope.date.timestamp() if envelope.date else row.created_epoch
    message = OutboxMessage(
        subject=row.subject,
        # Bare addresses here: Flask-Mail uses them for the envelope, and the
        # headers, names and all, come from the envelope in _message().
        recipients=[a.address for a in envelope.to],
        cc=[a.address for a in envelope.cc],
        bcc=[a.address for a in envelope.bcc],
        sender=sender.address,
        body=row.body_text,
        html=row.body_html,
        date=date or None,
        attachments=[
            MailAttachment(
                filename=part.filename,
                content_type=part.content_type,
                data=bytes(part.content),
                disposition=part.disposition,
                headers=dict(_pairs(part.headers)),
            )
            for part in attachments
        ],
    )
    message.envelope = envelope
    message.display_sender = sender
    # msgId is the one Message-ID header; extra_headers would add a second.
    message.msgId = row.message_id
    return message


def _pairs(headers: Any) -> list[tuple[str, str]]:
    """Read stored part headers: JSON text (SQLite) or a list (PostgreSQL)."""
    if isinstance(headers, str):
        headers = json.loads(headers)
    if headers is None:
        return []
    return [(name, value) for name, value in headers]
