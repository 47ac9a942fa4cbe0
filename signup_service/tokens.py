"""Signed confirmation tokens: who the link is for, and when it was made.

itsdangerous (Flask's own dependency) signs the user's id and a keyed digest
of their address with ``SECRET_KEY``. The link never carries the address
itself: URLs end up in access logs, proxy logs and browser histories, and our
logs promise to name nobody. Nothing is stored: the signature is the proof.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

# Each salt keeps its tokens from being valid anywhere else the key is used.
SALT = "signup.confirm-email.v2"
# Tokens minted before v2 signed ``[user_id, email]``, the address readable by
# anyone who sees the URL. They were mailed already, so refusing them hides
# nothing; they keep working until CONFIRM_MAX_AGE retires them, after which
# this salt and its branch in read_confirm_token can go.
LEGACY_SALT = "signup.confirm-email"
ADDRESS_SALT = b"signup.confirm-email.address"
DIGEST_BYTES = 16  # of HMAC-SHA256; 128 bits, 22 characters in the link


class InvalidToken(Exception):
    """The token was not made by us, or was changed (answered with 400)."""


class ExpiredToken(Exception):
    """The token is ours but older than ``CONFIRM_MAX_AGE`` (answered with 410)."""


@dataclass(frozen=True)
class Confirmation:
    """What a valid token says: the user, and a digest of the address mailed."""

    user_id: int
    address_digest: str

    def is_for(self, email: str) -> bool:
        """Tell whether the mail went to ``email``, in constant time."""
        return hmac.compare_digest(self.address_digest, address_digest(email))


def address_digest(email: str) -> str:
    """Return the keyed digest that binds a token to ``email``."""
    secret = current_app.config["SECRET_KEY"]
    secret = secret.encode() if isinstance(secret, str) else secret
    # Keyed, so that nobody without SECRET_KEY can test a guessed address
    # against a link; a key of its own, so the digest signs nothing else.
    key = hmac.digest(secret, ADDRESS_SALT, hashlib.sha256)
    mac = hmac.digest(key, email.encode(), hashlib.sha256)[:DIGEST_BYTES]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _serializer(salt: str) -> URLSafeTimedSerializer:
    """Return the serializer keyed with the app's ``SECRET_KEY`` and ``salt``."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def make_confirm_token(user_id: int, email: str) -> str:
    """Return a URL-safe token that confirms ``email`` for user ``user_id``."""
    return _serializer(SALT).dumps([user_id, address_digest(email)])


def read_confirm_token(token: str) -> Confirmation:
    """Check ``token``'s signature and age; return what it confirms."""
    try:
        match _load(token, SALT):
            case [int() as user_id, str() as digest]:
                return Confirmation(user_id=user_id, address_digest=digest)
    except InvalidToken:
        match _load(token, LEGACY_SALT):
            case [int() as user_id, str() as email]:
                return Confirmation(
                    user_id=user_id, address_digest=address_digest(email)
                )
    raise InvalidToken("this confirmation link is not valid")


def _load(token: str, salt: str) -> object:
    """Return the payload of ``token`` signed with ``salt``, if young enough."""
    try:
        return _serializer(salt).loads(
            token, max_age=current_app.config["CONFIRM_MAX_AGE"]
        )
    except SignatureExpired:
        # Checked first: SignatureExpired is a BadSignature, and is only raised
        # once the signature itself is valid.
        raise ExpiredToken("this confirmation link has expired") from None
    except BadSignature:
        raise InvalidToken("this confirmation link is not valid") from None
