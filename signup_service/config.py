"""Configuration from the environment, parsed and checked in one place.

Both services read ``DATABASE_URL`` and Flask-Mail's ``MAIL_*`` variables through
this module; the mailer adds its own ``MAILER_*`` tunables in
``mailer_service.config``. Every parser raises :class:`ConfigError` with the
variable's name, so a bad value stops start-up with a message a human can act on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MAX_REQUEST_BYTES = 64 * 1024  # bytes; larger signup bodies get 413
SQLITE_BUSY_TIMEOUT = 30  # seconds a writer waits for the SQLite lock

POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 10,  # seconds to establish a connection
    "keepalives": 1,
    "keepalives_idle": 30,  # seconds of silence before the first probe
    "keepalives_interval": 10,  # seconds between probes
    "keepalives_count": 3,  # unanswered probes before the connection is dead
}

DEFAULT_SQLITE_PATH = Path("var") / "outbox.db"  # relative to the working directory
DEFAULT_SENDER = "Outbox Demo <no-reply@example.com>"
DEFAULT_WELCOME_SUBJECT = "Welcome aboard!"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A configuration variable is missing or has an invalid value."""


def _raw(environ: Mapping[str, str], name: str) -> str | None:
    """Return the stripped value of ``name``, treating an empty string as unset."""
    value = environ.get(name, "").strip()
    return value or None


def parse_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a boolean that accepts true/false, 1/0, yes/no and on/off."""
    value = _raw(environ, name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (or 1/0), got {value!r}")


def parse_int(
    environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0
) -> int:
    """Read an integer no smaller than ``minimum``."""
    value = _raw(environ, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def parse_float(
    environ: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0
) -> float:
    """Read a finite number of seconds greater than ``minimum``."""
    value = _raw(environ, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not minimum < number < float("inf"):
        raise ConfigError(f"{name} must be greater than {minimum:g}, got {value}")
    return number


def database_url(environ: Mapping[str, str] = os.environ) -> URL:
    """Return ``DATABASE_URL`` as a SQLAlchemy URL on the psycopg 3 driver.

    Unset means the embedded demo: an SQLite file under ``var/``.
    """
    value = _raw(environ, "DATABASE_URL")
    if value is None:
        path = DEFAULT_SQLITE_PATH.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return URL.create("sqlite", database=str(path))
    try:
        url = make_url(value)
    except ArgumentError:
        raise ConfigError("DATABASE_URL is not a valid database URL") from None
    if url.drivername in {"postgres", "postgresql", "postgresql+psycopg"}:
        return url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite":
        return url
    raise ConfigError(
        f"DATABASE_URL must use postgresql:// or sqlite://, got {url.drivername}://"
    )


def engine_options(url: URL) -> dict[str, Any]:
    """Return create_engine() options suited to the database behind ``url``."""
    if url.get_backend_name() == "sqlite":
        # The signup workers and the mailer share one file: wait for the lock
        # instead of failing with "database is locked" (see models.py for WAL).
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
    # A server that vanishes from the network (no RST) would otherwise hang a
    # connect for minutes and a query for as long as TCP retries: give up on
    # connecting after a while, and notice a dead peer within about a minute.
    # Values in the URL's query string win.
    connect_args = {
        key: value
        for key, value in POSTGRES_CONNECT_ARGS.items()
        if key not in url.query
    }
    # A restarted PostgreSQL leaves dead connections in the pool; test them first.
    return {"pool_pre_ping": True, "connect_args": connect_args}


def sender_domain(sender: str) -> str:
    """Return the domain of a sender such as ``Name <user@example.com>``."""
    _, address = parseaddr(sender)
    local, at, domain = address.rpartition("@")
    if not (local and at and domain) or any(c in sender for c in "\r\n\0"):
        raise ConfigError(f"MAIL_DEFAULT_SENDER is not an email address: {sender!r}")
    return domain.lower()


def mail_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return Flask-Mail's ``MAIL_*`` settings, parsed and checked."""
    settings: dict[str, Any] = {
        "MAIL_SERVER": _raw(environ, "MAIL_SERVER") or "127.0.0.1",
        "MAIL_PORT": parse_int(environ, "MAIL_PORT", 1025, minimum=1),
        "MAIL_USE_TLS": parse_bool(environ, "MAIL_USE_TLS", False),
        "MAIL_USE_SSL": parse_bool(environ, "MAIL_USE_SSL", False),
        "MAIL_USERNAME": _raw(environ, "MAIL_USERNAME"),
        "MAIL_PASSWORD": _raw(environ, "MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": _raw(environ, "MAIL_DEFAULT_SENDER") or DEFAULT_SENDER,
        # Flask-Mail suppresses sending whenever app.testing is true; never let a
        # test flag turn the relay into a silent no-op.
        "MAIL_SUPPRESS_SEND": False,
    }
    if settings["MAIL_PORT"] > 65535:
        raise ConfigError(
            f"MAIL_PORT must be at most 65535, got {settings['MAIL_PORT']}"
        )
    if settings["MAIL_USE_TLS"] and settings["MAIL_USE_SSL"]:
        raise ConfigError("MAIL_USE_TLS and MAIL_USE_SSL cannot both be true")
    if bool(settings["MAIL_USERNAME"]) != bool(settings["MAIL_PASSWORD"]):
        raise ConfigError("MAIL_USERNAME and MAIL_PASSWORD must be set together")
    sender_domain(settings["MAIL_DEFAULT_SENDER"])
    return settings


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
    subject = _raw(environ, "SIGNUP_WELCOME_SUBJECT") or DEFAULT_WELCOME_SUBJECT
    if any(c in subject for c in "\r\n\0"):
        raise ConfigError("SIGNUP_WELCOME_SUBJECT must be a single line")
    return {
        **database_settings(environ),
        **mail,
        "MAX_CONTENT_LENGTH": MAX_REQUEST_BYTES,
        "MAX_FORM_MEMORY_SIZE": MAX_REQUEST_BYTES,
        "MESSAGE_ID_DOMAIN": sender_domain(mail["MAIL_DEFAULT_SENDER"]),
        "WELCOME_SUBJECT": subject,
    }
