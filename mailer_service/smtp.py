"""SMTP through Flask-Mail, with every connect and command bounded in time.

Flask-Mail 0.10 passes no timeout to smtplib (flask-mail issue #114): a server
that accepts and never answers would hang the worker forever. Its
``Connection.__exit__`` also calls ``quit()``, which can raise and mask the
error that matters. :class:`TimeoutConnection` fixes both.
"""

from __future__ import annotations

import logging
import smtplib

import flask_mail
from flask import current_app
from flask_mail import Connection, Message

from mailer_service.policy import DELIVERY_ERRORS, Failure, classify
from mailer_service.store import ClaimedRow

logger = logging.getLogger(__name__)


def _placeholder_message_id() -> str:
    """Stand in for the Message-ID that :func:`build_message` replaces anyway."""
    return "<placeholder@outbox.invalid>"


# Flask-Mail's Message() calls email.utils.make_msgid() for every message, and
# that calls socket.getfqdn(): a reverse DNS lookup per message, slow on hosts
# with slow DNS. Every outbox row carries its own Message-ID, so skip it.
flask_mail.make_msgid = _placeholder_message_id


class TimeoutConnection(Connection):
    """A Flask-Mail connection whose socket operations time out."""

    def __init__(self, timeout: float) -> None:
        super().__init__(current_app.extensions["mail"])
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        """Connect, STARTTLS and log in as Flask-Mail does, but with a timeout."""
        factory = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = factory(self.mail.server, self.mail.port, timeout=self.timeout)
        try:
            if self.mail.use_tls:
                host.starttls()
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def open(self) -> TimeoutConnection:
        """Open the SMTP session; errors propagate to the caller."""
        self.host = self.configure_host()
        return self

    @property
    def usable(self) -> bool:
        """Tell whether the SMTP session is open."""
        return self.host is not None and self.host.sock is not None

    def close(self) -> None:
        """Say QUIT politely, then close; an error here never masks another."""
        host, self.host = self.host, None
        if host is None:
            return
        try:
            host.quit()
        except (smtplib.SMTPException, OSError) as exc:
            logger.debug("QUIT failed: %s", exc, extra={"action": "smtp_quit"})
            host.close()


def build_message(row: ClaimedRow) -> Message:
    """Build the Flask-Mail message for ``row``, with the row's Message-ID."""
    message = Message(
        subject=row.subject,
        recipients=[row.recipient],
        body=row.body_text,
        html=row.body_html,
    )
    # msgId is the one Message-ID header; extra_headers would add a second.
    message.msgId = row.message_id
    return message


def send_row(connection: TimeoutConnection, row: ClaimedRow) -> Failure | None:
    """Try to deliver ``row`` once; return None on success, else the Failure."""
    try:
        message = build_message(row)
    except DELIVERY_ERRORS as exc:
        return classify(exc)
    if not connection.usable:
        try:
            connection.open()
        except DELIVERY_ERRORS as exc:
            return classify(exc, connecting=True)
    try:
        connection.send(message)
    except DELIVERY_ERRORS as exc:
        failure = classify(exc)
    except Exception as exc:  # a bug, not a delivery problem: keep its traceback
        logger.exception("unexpected error sending outbox_id=%d", row.id)
        failure = Failure(f"{type(exc).__name__}: {exc}", connection_lost=True)
    else:
        return None
    if failure.connection_lost or failure.code is None:
        # Without an SMTP reply, smtplib did not reset the session: it may be
        # mid-transaction. Start the next message on a fresh connection.
        connection.close()
    return failure
