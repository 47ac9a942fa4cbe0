"""The mailer's settings: DATABASE_URL and MAIL_* (shared) plus MAILER_* tunables."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

from outbox_contract.database import engine_options
from outbox_contract.settings import (
    ConfigError,
    database_url,
    mail_settings,
    parse_bool,
    parse_choice,
    parse_int,
    parse_positive,
    raw,
)

logger = logging.getLogger(__name__)

DEFAULT_MAIL_TIMEOUT = 30.0  # seconds for each SMTP connect and command
DEFAULT_POLL_INTERVAL = 1.0  # seconds between looks at the outbox when idle
DEFAULT_BATCH_SIZE = 20  # rows leased per claim, sent over one SMTP connection
DEFAULT_CONCURRENCY = 4  # SMTP connections each mailer process keeps busy at once
MAX_CONCURRENCY = 1024  # SMTP workers are threads with no database connection
POOL_SIZE = 2  # database connections kept: the claimer's and the completer's
POOL_OVERFLOW = 2  # more, briefly: retention, the metrics port's queue gauges
DEFAULT_LEASE_SECONDS = 120.0  # seconds a claim lasts before others may take it
DEFAULT_MAX_ATTEMPTS = 10  # deliveries tried before a row becomes failed
DEFAULT_BACKOFF_SECONDS = 30.0  # seconds before the first retry; doubles after
DEFAULT_BACKOFF_MAX_SECONDS = 3600.0  # seconds, the cap on one backoff delay
AMBIGUOUS_POLICIES = ("resend", "hold")  # MAILER_ON_AMBIGUOUS; the first is default

# libpq start-up option for the mailer's sessions (not the signup's: a 201 must
# mean the row is on disk).
ASYNC_COMMIT_OPTION = "-c synchronous_commit=off"

# One message's send is a handful of SMTP commands, each bounded by MAIL_TIMEOUT;
# the lease must outlast it, or another mailer could take the row mid-send.
LEASE_TIMEOUT_RATIO = 4


@dataclass(frozen=True)
class MailerSettings:
    """The tunables of the delivery loop, in seconds where they are times."""

    mail_timeout: float = DEFAULT_MAIL_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    backoff_max_seconds: float = DEFAULT_BACKOFF_MAX_SECONDS
    rate_limit: float | None = None  # messages per second, fleet-wide; None: none
    max_connections: int | None = None  # SMTP connections, fleet-wide; None: none
    on_ambiguous: str = AMBIGUOUS_POLICIES[0]  # a send a dead mailer had begun
    retention_days: int | None = None  # redact sent rows older than this; None: off
    suppress_hard_bounces: bool = True  # a 5.1.x bounce adds the address to the list


def load_mailer_settings(environ: Mapping[str, str] = os.environ) -> MailerSettings:
    """Parse and check ``MAIL_TIMEOUT`` and the ``MAILER_*`` variables."""
    settings = MailerSettings(
        mail_timeout=parse_positive(environ, "MAIL_TIMEOUT", DEFAULT_MAIL_TIMEOUT),
        poll_interval=parse_positive(
            environ, "MAILER_POLL_INTERVAL", DEFAULT_POLL_INTERVAL
        ),
        batch_size=parse_int(
            environ, "MAILER_BATCH_SIZE", DEFAULT_BATCH_SIZE, minimum=1
        ),
        concurrency=parse_int(
            environ,
            "MAILER_CONCURRENCY",
            DEFAULT_CONCURRENCY,
            minimum=1,
            maximum=MAX_CONCURRENCY,
        ),
        lease_seconds=parse_positive(
            environ, "MAILER_LEASE_SECONDS", DEFAULT_LEASE_SECONDS
        ),
        max_attempts=parse_int(
            environ, "MAILER_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, minimum=1
        ),
        backoff_seconds=parse_positive(
            environ, "MAILER_BACKOFF_SECONDS", DEFAULT_BACKOFF_SECONDS
        ),
        backoff_max_seconds=parse_positive(
            environ, "MAILER_BACKOFF_MAX_SECONDS", DEFAULT_BACKOFF_MAX_SECONDS
        ),
        rate_limit=parse_positive(environ, "MAILER_RATE_LIMIT", None),
        max_connections=parse_int(environ, "MAILER_MAX_CONNECTIONS", None, minimum=1),
        on_ambiguous=parse_choice(environ, "MAILER_ON_AMBIGUOUS", AMBIGUOUS_POLICIES),
        retention_days=parse_int(environ, "MAILER_RETENTION_DAYS", None, minimum=1),
        suppress_hard_bounces=parse_bool(environ, "MAILER_SUPPRESS_HARD_BOUNCES", True),
    )
    if settings.lease_seconds < LEASE_TIMEOUT_RATIO * settings.mail_timeout:
        raise ConfigError(
            f"MAILER_LEASE_SECONDS ({settings.lease_seconds:g}) must be at least "
            f"{LEASE_TIMEOUT_RATIO} x MAIL_TIMEOUT ({settings.mail_timeout:g}), "
            "so a lease outlasts one message's send"
        )
    if settings.backoff_max_seconds < settings.backoff_seconds:
        raise ConfigError(
            "MAILER_BACKOFF_MAX_SECONDS must be at least MAILER_BACKOFF_SECONDS"
        )
    return settings


def mailer_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Return the Flask config of the mailer app (database and Flask-Mail)."""
    url = database_url(environ)
    mailer = load_mailer_settings(environ)
    if url.get_backend_name() != "postgresql":
        fleet_wide = ("MAILER_RATE_LIMIT", "MAILER_MAX_CONNECTIONS")
        for name, value in zip(
            fleet_wide, (mailer.rate_limit, mailer.max_connections), strict=True
        ):
            if value is not None:
                raise ConfigError(f"{name} needs PostgreSQL (DATABASE_URL)")
    mail = mail_settings(environ)
    if not mail["MAIL_TLS_VERIFY"]:
        logger.warning(
            "MAIL_TLS_VERIFY=false: the SMTP server's certificate is not checked,"
            " so anyone on the path can read the mail and the password",
            extra={"action": "tls_unverified"},
        )
    options = engine_options(url)
    # The claimer and the completer hold one each, whatever the concurrency;
    # the overflow serves retention runs and the metrics port's queue gauges.
    options["pool_size"] = POOL_SIZE
    options["max_overflow"] = POOL_OVERFLOW
    if url.get_backend_name() == "postgresql" and "options" not in url.query:
        # Outcome commits need not wait for the WAL flush: a mailer crash cannot
        # lose them, and a PostgreSQL crash loses at most its last ~0.6 s of
        # them, whose messages are then sent again (see docs/delivery.md).
        options["connect_args"]["options"] = ASYNC_COMMIT_OPTION
    return {
        "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
        "SQLALCHEMY_ENGINE_OPTIONS": options,
        "MAILER_LISTEN_URL": listen_url(environ, url),
        **mail,
    }


def listen_url(environ: Mapping[str, str], url: URL) -> URL | None:
    """Return where the listener connects: ``MAILER_LISTEN_URL``, else DATABASE_URL.

    LISTEN needs a session of its own, which PgBouncer's transaction pooling
    cannot give: behind it, point MAILER_LISTEN_URL straight at PostgreSQL.
    None on SQLite, which has no LISTEN.
    """
    value = raw(environ, "MAILER_LISTEN_URL")
    if value is None:
        return url if url.get_backend_name() == "postgresql" else None
    listen = database_url({"DATABASE_URL": value})
    if listen.get_backend_name() != "postgresql" or url.get_backend_name() != (
        "postgresql"
    ):
        raise ConfigError("MAILER_LISTEN_URL needs PostgreSQL, as DATABASE_URL")
    return listen
