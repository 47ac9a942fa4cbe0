"""Configuration parsing: one place, clear errors, booleans that mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from outbox_contract.database import engine_options
from outbox_contract.settings import (
    ConfigError,
    database_url,
    mail_settings,
    parse_bool,
)
from signup_service import create_app
from signup_service.config import signup_settings
from tests.support.apps import TEST_APP_ENV
from tests.support.smtp import HangingServer


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
     ("false", False), ("False", False), ("0", False), ("no", False), ("off", False)],
)  # fmt: skip
def test_parse_bool_accepts_true_false_1_0(value, expected):
    assert parse_bool({"X": value}, "X", not expected) is expected


def test_parse_bool_unset_or_empty_is_default():
    assert parse_bool({}, "X", True) is True
    assert parse_bool({"X": ""}, "X", False) is False


def test_parse_bool_rejects_anything_else():
    with pytest.raises(ConfigError, match="MAIL_USE_TLS must be true or false"):
        mail_settings({"MAIL_USE_TLS": "maybe"})


def test_mail_use_tls_false_is_false():
    """The microblog bug: a set-but-false variable must not turn TLS on."""
    assert mail_settings({"MAIL_USE_TLS": "false"})["MAIL_USE_TLS"] is False
    assert mail_settings({"MAIL_USE_TLS": "0"})["MAIL_USE_TLS"] is False
    assert mail_settings({"MAIL_USE_TLS": "1"})["MAIL_USE_TLS"] is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAIL_PORT": "smtp"}, "MAIL_PORT must be an integer"),
        ({"MAIL_PORT": "0"}, "MAIL_PORT must be at least 1"),
        ({"MAIL_PORT": "70000"}, "MAIL_PORT must be at most 65535"),
        ({"MAIL_USE_TLS": "1", "MAIL_USE_SSL": "1"}, "cannot both be true"),
        ({"MAIL_USERNAME": "u"}, "must be set together"),
        ({"MAIL_DEFAULT_SENDER": "nobody"}, "not an email address"),
    ],
)
def test_mail_settings_reject_bad_values(env, message):
    with pytest.raises(ConfigError, match=message):
        mail_settings(env)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@db:5432/app",
        "postgresql://u:p@db:5432/app",
        "postgresql+psycopg://u:p@db:5432/app",
    ],
)
def test_database_url_maps_postgres_to_psycopg3(url):
    parsed = database_url({"DATABASE_URL": url})

    assert parsed.drivername == "postgresql+psycopg"
    assert parsed.render_as_string(hide_password=False) == (
        "postgresql+psycopg://u:p@db:5432/app"
    )


def test_database_url_defaults_to_sqlite_under_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    url = database_url({})

    assert url.drivername == "sqlite"
    assert Path(url.database) == tmp_path / "var" / "outbox.db"
    assert (tmp_path / "var").is_dir()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_database_url_rejects_other_databases(url):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        database_url({"DATABASE_URL": url})


def test_signup_settings_reject_header_injection_in_subject():
    with pytest.raises(ConfigError, match="SIGNUP_WELCOME_SUBJECT"):
        signup_settings(
            {"DATABASE_URL": "sqlite://", "SIGNUP_WELCOME_SUBJECT": "Hi\nBcc: x"}
        )


def test_create_app_fails_fast_on_bad_config():
    with pytest.raises(ConfigError, match="MAIL_PORT"):
        create_app({"DATABASE_URL": "sqlite://", "MAIL_PORT": "x"})


def test_message_id_domain_comes_from_sender():
    settings = signup_settings(
        {"DATABASE_URL": "sqlite://", "MAIL_DEFAULT_SENDER": "Shop <hi@Shop.Example>"}
    )
    assert settings["MESSAGE_ID_DOMAIN"] == "shop.example"


def test_postgres_engine_bounds_connects_and_detects_dead_peers():
    options = engine_options(database_url({"DATABASE_URL": "postgresql://u@db/app"}))

    assert options["connect_args"]["connect_timeout"] == 10
    assert options["connect_args"]["keepalives"] == 1


def test_postgres_url_query_overrides_connect_defaults():
    url = database_url({"DATABASE_URL": "postgresql://u@db/app?connect_timeout=3"})

    options = engine_options(url)

    assert "connect_timeout" not in options["connect_args"]
    assert options["connect_args"]["keepalives_idle"] == 30


def test_signup_gives_up_on_a_silent_database_server():
    """A server that accepts TCP and never answers: 503, not a hung request."""
    with HangingServer() as silent:
        url = f"postgresql://u@127.0.0.1:{silent.port}/app?connect_timeout=1"
        client = create_app({"DATABASE_URL": url, **TEST_APP_ENV}).test_client()

        response = client.post("/signup", json={"email": "a@example.com"})

    assert response.status_code == 503
