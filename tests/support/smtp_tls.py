"""A real SMTP server with TLS for tests: STARTTLS or implicit TLS, and AUTH.

Certificates come from ``trustme``: a throwaway CA that the test may or may
not hand to the mailer. The server offers AUTH only over TLS
(``auth_require_tls``) and records every login attempt, so a test can prove
that a password never crossed an unverified connection.
"""

from __future__ import annotations

import ssl
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.processes import free_port

USERNAME, PASSWORD = "relay", "s3cret-over-tls"


class TlsSmtpServer:
    """An aiosmtpd server on 127.0.0.1 whose certificate is issued for ``names``."""

    def __init__(
        self, ca: trustme.CA, *, implicit: bool, names: tuple[str, ...] = ("127.0.0.1",)
    ) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.logins: list[tuple[str, str]] = []  # (username, password) attempts
        self.lock = threading.Lock()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(context)
        tls = {"ssl_context": context} if implicit else {"tls_context": context}
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            require_starttls=not implicit,
            # aiosmtpd only counts STARTTLS as TLS; with implicit TLS every
            # byte, AUTH included, is inside the TLS session anyway.
            auth_require_tls=not implicit,
            authenticator=self.authenticate,
            **tls,
        )

    def __enter__(self) -> TlsSmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        """Record the attempt; accept only USERNAME and PASSWORD."""
        assert isinstance(auth_data, LoginPassword)
        login = (auth_data.login.decode(), auth_data.password.decode())
        with self.lock:
            self.logins.append(login)
        return AuthResult(success=login == (USERNAME, PASSWORD))

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Keep the message."""
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 OK"


def write_ca(ca: trustme.CA, folder: Path) -> Path:
    """Write ``ca``'s certificate as a PEM file for MAIL_TLS_CA_FILE."""
    path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path
