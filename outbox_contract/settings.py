"""Settings both services read from the environment, parsed and checked in one place.

``DATABASE_URL`` and Flask-Mail's ``MAIL_*`` variables live here, with the
parsers every service uses for its own variables. Each parser raises
:class:`ConfigError` naming the variable, so a bad value stops start-up with a
message a human can act on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_SQLITE_PATH = Path("var") / "outbox.db"  # relative to the working directory
DEFAULT_SENDER = "Outbox Demo <no-reply@example.com>"

D = TypeVar("D")  # a parser's default: a value, or None for "unset means off"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A configuration variable is missing or has an invalid value."""


def raw(environ: Mapping[str, str], name: str) -> str | None:
    """Return the stripped value of ``name``, treating an empty string as unset."""
    value = environ.get(name, "").strip()
    return value or None


def parse_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a boolean that accepts true/false, 1/0, yes/no and on/off."""
    value = raw(environ, name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (or 1/0), got {value!r}")


def parse_int(
    environ: Mapping[str, str],
    name: str,
    default: D,
    *,
    minimum: int,
    maximum: int | None = None,
) -> int | D:
    """Read an integer in ``[minimum, maximum]``."""
    value = raw(environ, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {number}")
    return number


def parse_positive(environ: Mapping[str, str], name: str, default: D) -> float | D:
    """Read a finite number greater than 0, such as seconds or a rate."""
    value = raw(environ, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise ConfigError(f"{name} must be greater than 0, got {value}")
    return number


def parse_choice(
    environ: Mapping[str, str], name: str, choices: tuple[str, ...]
) -> str:
    """Read one of ``choices``, ignoring case; unset means the first."""
    value = (raw(environ, name) or choices[0]).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def database_url(environ: Mapping[str, str] = os.environ) -> URL:
    """Return ``DATABASE_URL`` as a SQLAlchemy URL on the psycopg 3 driver.

    Unset means the embedded demo: an SQLite file under ``var/``.
    """
    value = raw(environ, "DATABASE_URL")
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
        "MAIL_SERVER": raw(environ, "MAIL_SERVER") or "127.0.0.1",
        "MAIL_PORT": parse_int(environ, "MAIL_PORT", 1025, minimum=1, maximum=65535),
        "MAIL_USE_TLS": parse_bool(environ, "MAIL_USE_TLS", False),
        "MAIL_USE_SSL": parse_bool(environ, "MAIL_USE_SSL", False),
        "MAIL_USERNAME": raw(environ, "MAIL_USERNAME"),
        "MAIL_PASSWORD": raw(environ, "MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": raw(environ, "MAIL_DEFAULT_SENDER") or DEFAULT_SENDER,
        # TLS checks the server's certificate and name unless told not to.
        "MAIL_TLS_VERIFY": parse_bool(environ, "MAIL_TLS_VERIFY", True),
        "MAIL_TLS_CA_FILE": _ca_file(environ),
        # Flask-Mail suppresses sending whenever app.testing is true; never let a
        # test flag turn the relay into a silent no-op.
        "MAIL_SUPPRESS_SEND": False,
    }
    if settings["MAIL_USE_TLS"] and settings["MAIL_USE_SSL"]:
        raise ConfigError("MAIL_USE_TLS and MAIL_USE_SSL cannot both be true")
    if bool(settings["MAIL_USERNAME"]) != bool(settings["MAIL_PASSWORD"]):
        raise ConfigError("MAIL_USERNAME and MAIL_PASSWORD must be set together")
    if settings["MAIL_TLS_CA_FILE"] and not settings["MAIL_TLS_VERIFY"]:
        raise ConfigError("MAIL_TLS_CA_FILE has no use with MAIL_TLS_VERIFY=false")
    sender_domain(settings["MAIL_DEFAULT_SENDER"])
    return settings


def _ca_file(environ: Mapping[str, str]) -> str | None:
    """Return ``MAIL_TLS_CA_FILE``, a readable PEM file of trusted CAs, if set."""
    value = raw(environ, "MAIL_TLS_CA_FILE")
    if value is None:
        return None
    path = Path(value)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"MAIL_TLS_CA_FILE is not a readable file: {value}")
    return str(path.resolve())
