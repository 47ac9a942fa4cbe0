"""The signup service's settings: the shared DATABASE_URL and MAIL_*, plus SIGNUP_*.

The shared parsing lives in :mod:`outbox_contract.settings`; this module adds
what only the web app needs and returns the whole Flask config at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from outbox_contract.database import engine_options
from outbox_contract.settings import (
    ConfigError,
    database_url,
    mail_settings,
    raw,
    sender_domain,
)

MAX_REQUEST_BYTES = 64 * 1024  # bytes; larger signup bodies get 413
DEFAULT_WELCOME_SUBJECT = "Welcome aboard!"


def database_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return Flask-SQLAlchemy's settings for ``DATABASE_URL``."""
    url = database_url(environ)
    return {
        "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
    }


def signup_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return the whole Flask config of the signup service."""
    mail = mail_settings(environ)
    subject = raw(environ, "SIGNUP_WELCOME_SUBJECT") or DEFAULT_WELCOME_SUBJECT
    if any(c in subject for c in "\r\n\0"):
        raise ConfigError("SIGNUP_WELCOME_SUBJECT must be a single line")
    return {
        **database_settings(environ),
        "MAIL_DEFAULT_SENDER": mail["MAIL_DEFAULT_SENDER"],
        "MAX_CONTENT_LENGTH": MAX_REQUEST_BYTES,
        "MAX_FORM_MEMORY_SIZE": MAX_REQUEST_BYTES,
        "MESSAGE_ID_DOMAIN": sender_domain(mail["MAIL_DEFAULT_SENDER"]),
        "WELCOME_SUBJECT": subject,
    }
