"""Who may act on the status page: ``OUTBOX_ADMIN_TOKEN``, a login cookie, CSRF tokens.

Without the token the page is read-only. With it, an operator pastes it into
the login form once; the page then sets a cookie holding a session value
derived by HMAC from the token, never the token itself. Every form carries a
CSRF token, an HMAC of that session value (or, for the login form, of a
random nonce in a cookie of its own), so another site can neither read nor
forge one. Every secret is compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from outbox_contract.settings import ConfigError, raw

ADMIN_TOKEN_VARIABLE = "OUTBOX_ADMIN_TOKEN"
MIN_TOKEN_CHARS = 32  # the same floor as SECRET_KEY and MAILER_REDACTION_KEY
SESSION_SECONDS = 8 * 3600  # a login lasts one working shift
NONCE_BYTES = 16  # random bytes in a session or login nonce
SESSION_COOKIE = "outbox_status_session"
LOGIN_COOKIE = "outbox_status_login"  # binds the login form's CSRF token
# The key is derived, so a cookie's MAC never uses the token directly.
_KEY_LABEL = b"outbox status page: session and csrf key"


def admin_token(environ: Mapping[str, str] = os.environ) -> str | None:
    """Read ``OUTBOX_ADMIN_TOKEN``; None leaves the page read-only."""
    value = raw(environ, ADMIN_TOKEN_VARIABLE)
    if value is not None and len(value) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{ADMIN_TOKEN_VARIABLE} must be at least {MIN_TOKEN_CHARS} characters,"
            f" got {len(value)}; make one with"
            " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return value


def new_nonce() -> str:
    """Return a fresh random nonce, URL- and cookie-safe."""
    return secrets.token_urlsafe(NONCE_BYTES)


def _same(given: str, expected: str) -> bool:
    """Compare two strings in constant time (as UTF-8: any text is safe)."""
    return hmac.compare_digest(given.encode(), expected.encode())


class Gate:
    """Checks the admin token; issues and verifies session values and CSRF tokens."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._key = hmac.new(token.encode(), _KEY_LABEL, hashlib.sha256).digest()

    def _mac(self, purpose: str, value: str) -> str:
        """Return the hex HMAC of ``value`` for one ``purpose``."""
        message = f"{purpose}|{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """Tell whether ``given`` is the admin token."""
        return _same(given, self._token)

    def new_session(self, now: float) -> str:
        """Return a session value issued at ``now``: ``issued.nonce.mac``."""
        body = f"{int(now)}.{new_nonce()}"
        return f"{body}.{self._mac('session', body)}"

    def session_valid(self, value: str | None, now: float) -> bool:
        """Tell whether ``value`` is a session this gate issued and has not expired."""
        if not value or value.count(".") != 2:
            return False
        body, _, mac = value.rpartition(".")
        if not _same(mac, self._mac("session", body)):
            return False
        issued = int(body.partition(".")[0])  # the MAC vouches that it is a number
        return issued <= now < issued + SESSION_SECONDS

    def csrf_token(self, binding: str) -> str:
        """Return the CSRF token of forms shown to the holder of ``binding``."""
        return self._mac("csrf", binding)

    def csrf_valid(self, binding: str | None, given: str | None) -> bool:
        """Tell whether ``given`` is the CSRF token for ``binding``."""
        if not binding or not given:
            return False
        return _same(given, self.csrf_token(binding))


def from_this_site(origin: str | None, referer: str | None, host: str) -> bool:
    """Tell whether a POST's Origin (or else Referer) names ``host``; absent is fine.

    Browsers send Origin on every POST, so a cross-site form is caught here
    before its CSRF token is even looked at. ``Origin: null`` (a sandboxed
    frame, a ``data:`` page) is refused. A client that sends neither, such as
    curl, still needs the CSRF token and the cookie.
    """
    for header in (origin, referer):
        if header is not None:
            return urlsplit(header).netloc.lower() == host.lower()
    return True
