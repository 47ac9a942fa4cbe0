"""Signed confirmation tokens: who the link is for, and when it was made.

itsdangerous (Flask's own dependency) signs the user's id and address with
``SECRET_KEY``; the salt keeps these tokens from being valid anywhere else
the key is used. Nothing is stored: the signature is the proof.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "signup.confirm-email"


class InvalidToken(Exception):
    """The token was not made by us, or was changed (answered with 400)."""


class ExpiredToken(Exception):
    """The token is ours but older than ``CONFIRM_MAX_AGE`` (answered with 410)."""


@dataclass(frozen=True)
class Confirmation:
    """What a valid token says: the user and the address the mail went to."""

    user_id: int
    email: str


def _serializer() -> URLSafeTimedSerializer:
    """Return the serializer keyed with the app's ``SECRET_KEY``."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def make_confirm_token(user_id: int, email: str) -> str:
    """Return a URL-safe token that confirms ``email`` for user ``user_id``."""
    return _serializer().dumps([user_id, email])


def read_confirm_token(token: str) -> Confirmation:
    """Check ``token``'s signature and age; return what it confirms."""
    try:
        payload = _serializer().loads(
            token, max_age=current_app.config["CONFIRM_MAX_AGE"]
        )
    except SignatureExpired:
        # Checked first: SignatureExpired is a BadSignature, and is only raised
        # once the signature itself is valid.
        raise ExpiredToken("this confirmation link has expired") from None
    except BadSignature:
        raise InvalidToken("this confirmation link is not valid") from None
    match payload:
        case [int() as user_id, str() as email]:
            return Confirmation(user_id=user_id, email=email)
    raise InvalidToken("this confirmation link is not valid")
