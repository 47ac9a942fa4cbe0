"""The mailer's MAILER_* and MAIL_TIMEOUT settings."""

from __future__ import annotations

import pytest

from mailer_service.config import MailerSettings, load_mailer_settings
from outbox_contract.settings import ConfigError


def test_mailer_settings_defaults_are_documented_values():
    assert load_mailer_settings({}) == MailerSettings(
        mail_timeout=30,
        poll_interval=1,
        batch_size=20,
        concurrency=4,
        lease_seconds=120,
        max_attempts=10,
        backoff_seconds=30,
        backoff_max_seconds=3600,
    )


def test_mailer_settings_read_every_variable():
    settings = load_mailer_settings(
        {
            "MAIL_TIMEOUT": "2.5",
            "MAILER_POLL_INTERVAL": "0.25",
            "MAILER_BATCH_SIZE": "7",
            "MAILER_CONCURRENCY": "3",
            "MAILER_LEASE_SECONDS": "10",
            "MAILER_MAX_ATTEMPTS": "4",
            "MAILER_BACKOFF_SECONDS": "5",
            "MAILER_BACKOFF_MAX_SECONDS": "50",
        }
    )

    assert settings == MailerSettings(2.5, 0.25, 7, 3, 10, 4, 5, 50)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAIL_TIMEOUT": "0"}, "MAIL_TIMEOUT must be greater than 0"),
        ({"MAIL_TIMEOUT": "inf"}, "MAIL_TIMEOUT must be greater than 0"),
        ({"MAIL_TIMEOUT": "nan"}, "MAIL_TIMEOUT must be greater than 0"),
        ({"MAILER_POLL_INTERVAL": "soon"}, "MAILER_POLL_INTERVAL must be a number"),
        ({"MAILER_BATCH_SIZE": "1.5"}, "MAILER_BATCH_SIZE must be an integer"),
        ({"MAILER_MAX_ATTEMPTS": "0"}, "MAILER_MAX_ATTEMPTS must be at least 1"),
        ({"MAILER_CONCURRENCY": "0"}, "MAILER_CONCURRENCY must be at least 1"),
        ({"MAILER_RATE_LIMIT": "0"}, "MAILER_RATE_LIMIT must be greater than 0"),
        ({"MAILER_RATE_LIMIT": "fast"}, "MAILER_RATE_LIMIT must be a number"),
        ({"MAILER_MAX_CONNECTIONS": "0"}, "MAILER_MAX_CONNECTIONS must be at least"),
        ({"MAILER_ON_AMBIGUOUS": "drop"}, "MAILER_ON_AMBIGUOUS must be one of"),
        ({"MAILER_RETENTION_DAYS": "0"}, "MAILER_RETENTION_DAYS must be at least 1"),
        ({"MAILER_CONCURRENCY": "1025"}, "MAILER_CONCURRENCY must be at most 1024"),
        ({"MAILER_LEASE_SECONDS": "100"}, "must be at least 4 x MAIL_TIMEOUT"),
        ({"MAILER_BACKOFF_MAX_SECONDS": "10"}, "MAILER_BACKOFF_MAX_SECONDS"),
    ],
)
def test_mailer_settings_reject_bad_values(env, message):
    with pytest.raises(ConfigError, match=message):
        load_mailer_settings(env)


def test_mailer_settings_read_the_delivery_controls():
    settings = load_mailer_settings(
        {
            "MAILER_RATE_LIMIT": "14.5",
            "MAILER_MAX_CONNECTIONS": "3",
            "MAILER_ON_AMBIGUOUS": "HOLD",
            "MAILER_RETENTION_DAYS": "30",
        }
    )

    assert (settings.rate_limit, settings.max_connections) == (14.5, 3)
    assert (settings.on_ambiguous, settings.retention_days) == ("hold", 30)


def test_delivery_controls_are_off_by_default():
    settings = load_mailer_settings({})

    assert (settings.rate_limit, settings.max_connections) == (None, None)
    assert (settings.on_ambiguous, settings.retention_days) == ("resend", None)
