"""Parse and check a signup request body; nothing here touches the database."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import Request

MAX_EMAIL_LENGTH = 254  # characters, the SMTP path limit (RFC 5321, with errata)
MAX_NAME_LENGTH = 100  # characters
# Unicode categories a name may not contain: controls, format and line breaks.
FORBIDDEN_NAME_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


class UnreadableBody(Exception):
    """The body cannot be read as a signup at all (answered with 400)."""


class InvalidSignup(Exception):
    """The body was read, but a field is invalid (answered with 422)."""


@dataclass(frozen=True)
class Signup:
    """A validated signup: a lower-cased ASCII address and an optional name."""

    email: str
    name: str | None


def read_fields(request: Request) -> dict[str, Any]:
    """Return the request's fields from a JSON object or a form post."""
    if request.is_json:
        body = request.get_json(silent=True)
        if body is None:
            raise UnreadableBody("request body is not valid JSON")
        if not isinstance(body, dict):
            raise UnreadableBody("request body must be a JSON object")
        return body
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    raise UnreadableBody(
        "Content-Type must be application/json or application/x-www-form-urlencoded"
    )


def parse_signup(fields: dict[str, Any]) -> Signup:
    """Validate the ``email`` and ``name`` fields of a signup."""
    return Signup(email=_parse_email(fields.get("email")), name=_parse_name(fields))


def _parse_email(value: Any) -> str:
    """Return a normalized single address, rejecting anything header-unsafe."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidSignup("email is required and must be a string")
    if any(c in value for c in "\r\n\0"):
        raise InvalidSignup("email must not contain control characters")
    value = value.strip()
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidSignup(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    try:
        # No DNS in the request path; no SMTPUTF8, which Flask-Mail never speaks.
        result = validate_email(
            value,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_display_name=False,
        )
    except EmailNotValidError as err:
        raise InvalidSignup(f"email is invalid: {err}") from None
    address = result.ascii_email or result.normalized
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidSignup(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    return address.lower()


def _parse_name(fields: dict[str, Any]) -> str | None:
    """Return the optional display name, stripped, or None when absent or blank."""
    value = fields.get("name")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSignup("name must be a string")
    if any(unicodedata.category(c) in FORBIDDEN_NAME_CATEGORIES for c in value):
        raise InvalidSignup("name must not contain control characters")
    value = value.strip()
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidSignup(f"name must be at most {MAX_NAME_LENGTH} characters")
    return value or None
