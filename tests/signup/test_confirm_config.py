"""SECRET_KEY, PUBLIC_BASE_URL and CONFIRM_MAX_AGE: parsed once, refused clearly."""

from __future__ import annotations

import logging

import pytest

from outbox_contract.settings import ConfigError
from signup_service import create_app
from signup_service.config import signup_settings

PG = {"DATABASE_URL": "postgresql://u@db/app"}
KEY = "k" * 32


@pytest.mark.parametrize("value", [None, "", "   "])
def test_secret_key_is_required_with_postgresql(value):
    env = PG if value is None else {**PG, "SECRET_KEY": value}

    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        signup_settings(env)


def test_create_app_refuses_postgresql_without_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(PG)


def test_secret_key_must_be_long_enough():
    with pytest.raises(ConfigError, match="at least 32 characters"):
        signup_settings({**PG, "SECRET_KEY": "short"})
    assert signup_settings({**PG, "SECRET_KEY": KEY})["SECRET_KEY"] == KEY


def test_sqlite_demo_without_secret_key_gets_a_random_one_and_a_warning(
    tmp_path, caplog
):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'outbox.db'}"}
    with caplog.at_level(logging.WARNING, logger="signup_service"):
        first, second = create_app(env), create_app(env)

    assert len(first.config["SECRET_KEY"]) >= 32
    assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]
    assert "SECRET_KEY is not set" in caplog.text


def test_public_base_url_defaults_to_make_run_and_drops_the_slash():
    assert signup_settings({"DATABASE_URL": "sqlite://"})["PUBLIC_BASE_URL"] == (
        "http://127.0.0.1:8000"
    )
    settings = signup_settings(
        {"DATABASE_URL": "sqlite://", "PUBLIC_BASE_URL": "https://x.example/app/"}
    )
    assert settings["PUBLIC_BASE_URL"] == "https://x.example/app"


@pytest.mark.parametrize(
    "url", ["example.org", "ftp://example.org", "https://", "https://x.example/?a=1"]
)
def test_public_base_url_must_be_an_http_origin(url):
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        signup_settings({"DATABASE_URL": "sqlite://", "PUBLIC_BASE_URL": url})


def test_confirm_max_age_defaults_to_seven_days():
    settings = signup_settings({"DATABASE_URL": "sqlite://"})

    assert settings["CONFIRM_MAX_AGE"] == 7 * 24 * 3600


@pytest.mark.parametrize("value", ["0", "-5", "soon", "inf"])
def test_confirm_max_age_must_be_a_positive_number(value):
    with pytest.raises(ConfigError, match="CONFIRM_MAX_AGE"):
        signup_settings({"DATABASE_URL": "sqlite://", "CONFIRM_MAX_AGE": value})


def test_confirm_max_age_accepts_fractions():
    settings = signup_settings({"DATABASE_URL": "sqlite://", "CONFIRM_MAX_AGE": "1.5"})

    assert settings["CONFIRM_MAX_AGE"] == 1.5
