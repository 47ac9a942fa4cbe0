"""SMTP through Flask-Mail, with every connect and command bounded in time.

Flask-Mail 0.10 passes no timeout to smtplib (flask-mail issue #114): a server
that accepts and never answers would hang the worker forever. Its
``Connection.__exit__`` also calls ``quit()``, which can raise and mask the
error that matters. It also calls ``starttls()`` and ``SMTP_SSL`` without an
SSL context, and smtplib then checks neither the certificate nor the host
name. :class:`TimeoutConnection` fixes all three.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field, replace
from typing import Any

from flask import current_app
from flask_mail import BadHeaderError, Connection, sanitize_address

from mailer_service.message import OutboxMessage, build_message
from mailer_service.policy import DELIVERY_ERRORS, Failure, classify
from mailer_service.store import ClaimedRow, Refused

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """How one send went: the failure (None if accepted) and who was refused.

    ``recipients`` are the envelope's (what RCPT TO was given); ``suppressed``
    the addresses the suppression list kept out of it.
    """

    failure: Failure | None
    refused: Refused = field(default_factory=dict)
    recipients: tuple[str, ...] = ()
    suppressed: tuple[str, ...] = ()

    @property
    def all_suppressed(self) -> bool:
        """Tell whether nothing was sent because every recipient is suppressed."""
        return bool(self.suppressed) and not self.recipients

    @property
    def accepted(self) -> set[str]:
        """Return the recipients the server took, lower-cased (none on a failure)."""
        if self.failure is not None:
            return set()
        refused = {a.lower() for a in self.refused}
        return {a.lower() for a in self.recipients} - refused


class TimeoutConnection(Connection):
    """A Flask-Mail connection whose socket operations time out."""

    def __init__(self, timeout: float) -> None:
        super().__init__(current_app.extensions["mail"])
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        """Connect, STARTTLS and log in as Flask-Mail does, timed and verified."""
        use_tls = self.mail.use_ssl or self.mail.use_tls
        context = tls_context() if use_tls else None
        if self.mail.use_ssl:
            host: smtplib.SMTP = smtplib.SMTP_SSL(
                self.mail.server, self.mail.port, timeout=self.timeout, context=context
            )
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=self.timeout)
        try:
            if self.mail.use_tls:
                # A refused certificate raises here, before any password is sent.
                host.starttls(context=context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def send(  # type: ignore[override]
        self, message: OutboxMessage, recipients: list[str]
    ) -> Refused:
        """Send as Flask-Mail does, but return the recipients the server refused.

        Flask-Mail's own ``send`` throws away what ``sendmail()`` returns, and
        raises only when every recipient is refused. ``recipients`` is the
        envelope: the message's, less any suppressed address.
        """
        if message.has_bad_headers():
            raise BadHeaderError
        assert self.host is not None, "open() the connection first"
        refused = self.host.sendmail(
            sanitize_address(message.sender),
            [sanitize_address(address) for address in recipients],
            message.as_bytes(),
        )
        return {
            address: (code, _text(reply)) for address, (code, reply) in refused.items()
        }

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


def tls_context() -> ssl.SSLContext:
    """Return the SSL context for SMTP: the system's CAs, or MAIL_TLS_CA_FILE's."""
    config = current_app.config
    context = ssl.create_default_context(cafile=config.get("MAIL_TLS_CA_FILE"))
    if not config.get("MAIL_TLS_VERIFY", True):
        # The explicit escape hatch; the mailer warned about it at start.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def send_row(
    connection: TimeoutConnection,
    row: ClaimedRow,
    attachments: list[Any],
    suppressed: frozenset[str] = frozenset(),
) -> Attempt:
    """Try to deliver ``row`` once, to all but the ``suppressed`` addresses.

    A message whose every recipient is suppressed is not given to SMTP at all.
    """
    try:
        message = build_message(row, attachments)
    except DELIVERY_ERRORS as exc:
        return Attempt(classify(exc))
    everyone = [a.address for a in message.envelope.recipients]
    recipients = [a for a in everyone if a.lower() not in suppressed]
    skipped = tuple(a for a in everyone if a.lower() in suppressed)
    if not recipients:
        return Attempt(None, suppressed=skipped)
    attempt = _send(connection, message, recipients, row.id)
    return replace(attempt, recipients=tuple(recipients), suppressed=skipped)


def _send(
    connection: TimeoutConnection,
    message: OutboxMessage,
    recipients: list[str],
    row_id: int,
) -> Attempt:
    """Open the connection if need be and send; return how it went."""
    if not connection.usable:
        try:
            connection.open()
        except DELIVERY_ERRORS as exc:
            return Attempt(classify(exc, connecting=True))
    try:
        refused = connection.send(message, recipients)
    except DELIVERY_ERRORS as exc:
        failure = classify(exc)
        refused = _all_refused(exc)
    except Exception as exc:  # a bug, not a delivery problem: keep its traceback
        logger.exception("unexpected error sending outbox_id=%d", row_id)
        failure = Failure(f"{type(exc).__name__}: {exc}", connection_lost=True)
        refused = {}
    else:
        return Attempt(None, refused)
    if failure.connection_lost or failure.code is None:
        # Without an SMTP reply, smtplib did not reset the session: it may be
        # mid-transaction. Start the next message on a fresh connection.
        connection.close()
    return Attempt(failure, refused)


def _all_refused(exc: Exception) -> Refused:
    """Return every recipient of an SMTPRecipientsRefused, with its reply."""
    if not isinstance(exc, smtplib.SMTPRecipientsRefused):
        return {}
    return {a: (code, _text(reply)) for a, (code, reply) in exc.recipients.items()}


def _text(reply: bytes | str) -> str:
    """Decode an SMTP reply text."""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
