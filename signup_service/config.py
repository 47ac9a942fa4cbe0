"""The signup service's settings: the shared DATABASE_URL and MAIL_*, plus its own.

The shared parsing lives in :mod:`outbox_contract.settings`; this module adds
what only the web app needs (the secret, the confirmation link, the rate
limit, the proxies in front) and returns the whole Flask config at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from limits import parse_many
from limits.storage import SCHEMES

from outbox_contract.database import engine_options
from outbox_contract.settings import (
    ConfigError,
    database_url,
    mail_settings,
    parse_int,
    parse_positive,
    raw,
    sender_domain,
)

MAX_REQUEST_BYTES = 64 * 1024  # bytes; larger signup bodies get 413
DEFAULT_WELCOME_SUBJECT = "Welcome aboard!"
MIN_SECRET_KEY_LENGTH = 32  # characters; secrets.token_urlsafe(32) gives 43
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"  # where `make run` serves
DEFAULT_CONFIRM_MAX_AGE = 7 * 24 * 3600.0  # seconds a confirmation link works
DEFAULT_SIGNUP_RATE_LIMIT = "10/minute"  # per client address, Flask-Limiter syntax
# Counts live in each worker's memory unless a shared storage is configured.
DEFAULT_RATELIMIT_STORAGE_URI = "memory://"


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


def rate_limit_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return Flask-Limiter's settings and the proxies to trust."""
    limit = raw(environ, "SIGNUP_RATE_LIMIT") or DEFAULT_SIGNUP_RATE_LIMIT
    try:
        parse_many(limit)
    except ValueError:
        raise ConfigError(
            f"SIGNUP_RATE_LIMIT must be a rate limit such as 10/minute, got {limit!r}"
        ) from None
    storage = raw(environ, "RATELIMIT_STORAGE_URI") or DEFAULT_RATELIMIT_STORAGE_URI
    scheme = storage.partition("://")[0]
    if "://" not in storage or scheme not in SCHEMES or scheme.startswith("async+"):
        raise ConfigError(
            "RATELIMIT_STORAGE_URI must be memory:// or a storage URI such as"
            f" redis://host:6379/0, got scheme {scheme!r}"
        )
    return {
        "SIGNUP_RATE_LIMIT": limit,
        "RATELIMIT_STORAGE_URI": storage,
        "TRUSTED_PROXY_COUNT": parse_int(
            environ, "TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10
        ),
    }


def signup_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return the whole Flask config of the signup service."""
    mail = mail_settings(environ)
    subject = raw(environ, "SIGNUP_WELCOME_SUBJECT") or DEFAULT_WELCOME_SUBJECT
    if any(c in subject for c in "\r\n\0"):
        raise ConfigError("SIGNUP_WELCOME_SUBJECT must be a single line")
    return {
        **database_settings(environ),
        **rate_limit_settings(environ),
        "SECRET_KEY": secret_key(environ),
        "PUBLIC_BASE_URL": public_base_url(environ),
        "CONFIRM_MAX_AGE": parse_positive(
            environ, "CONFIRM_MAX_AGE", DEFAULT_CONFIRM_MAX_AGE
        ),
        "MAIL_DEFAULT_SENDER": mail["MAIL_DEFAULT_SENDER"],
        "MAX_CONTENT_LENGTH": MAX_REQUEST_BYTES,
        "MAX_FORM_MEMORY_SIZE": MAX_REQUEST_BYTES,
        "MESSAGE_ID_DOMAIN": sender_domain(mail["MAIL_DEFAULT_SENDER"]),
        "WELCOME_SUBJECT": subject,
    }
