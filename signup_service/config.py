"""The signup service's settings: the shared DATABASE_URL and MAIL_*, plus its own.

The shared parsing lives in :mod:`outbox_contract.settings`; this module adds
what only the web app needs (the secret, the confirmation link) and returns
the whole Flask config at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from outbox_contract.database import engine_options
from outbox_contract.settings import (
    ConfigError,
    database_url,
    mail_settings,
    parse_seconds,
    raw,
    sender_domain,
)

MAX_REQUEST_BYTES = 64 * 1024  # bytes; larger signup bodies get 413
DEFAULT_WELCOME_SUBJECT = "Welcome aboard!"
MIN_SECRET_KEY_LENGTH = 32  # characters; secrets.token_urlsafe(32) gives 43
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"  # where `make run` serves
DEFAULT_CONFIRM_MAX_AGE = 7 * 24 * 3600.0  # seconds a confirmation link works


def database_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return Flask-SQLAlchemy's settings for ``DATABASE_URL``."""
    url = database_url(environ)
    return {
        "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
    }


def secret_key(environ: Mapping[str, str] = os.environ) -> str | None:
    """Return ``SECRET_KEY``; None is allowed only on the SQLite demo database."""
    value = raw(environ, "SECRET_KEY")
    if value is None:
        if database_url(environ).get_backend_name() == "postgresql":
            raise ConfigError(
                "SECRET_KEY is required with a PostgreSQL DATABASE_URL: it signs"
                " the confirmation links. Make one with: python3 -c"
                " 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return None
    if len(value) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters"
        )
    return value


def public_base_url(environ: Mapping[str, str] = os.environ) -> str:
    """Return ``PUBLIC_BASE_URL``, the origin the mail's links point at."""
    value = raw(environ, "PUBLIC_BASE_URL") or DEFAULT_PUBLIC_BASE_URL
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"PUBLIC_BASE_URL must be an http(s) URL, got {value!r}")
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ConfigError("PUBLIC_BASE_URL must have no query, fragment or spaces")
    return value.rstrip("/")


def signup_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return the whole Flask config of the signup service."""
    mail = mail_settings(environ)
    subject = raw(environ, "SIGNUP_WELCOME_SUBJECT") or DEFAULT_WELCOME_SUBJECT
    if any(c in subject for c in "\r\n\0"):
        raise ConfigError("SIGNUP_WELCOME_SUBJECT must be a single line")
    return {
        **database_settings(environ),
        "SECRET_KEY": secret_key(environ),
        "PUBLIC_BASE_URL": public_base_url(environ),
        "CONFIRM_MAX_AGE": parse_seconds(
            environ, "CONFIRM_MAX_AGE", DEFAULT_CONFIRM_MAX_AGE
        ),
        "MAIL_DEFAULT_SENDER": mail["MAIL_DEFAULT_SENDER"],
        "MAX_CONTENT_LENGTH": MAX_REQUEST_BYTES,
        "MAX_FORM_MEMORY_SIZE": MAX_REQUEST_BYTES,
        "MESSAGE_ID_DOMAIN": sender_domain(mail["MAIL_DEFAULT_SENDER"]),
        "WELCOME_SUBJECT": subject,
    }
