"""compose.yaml gives the signup service its secret, and Redis for the rate limit."""

from __future__ import annotations

import re

from signup_service.config import signup_settings
from tests.support.deployfiles import compose_config, service_env

PRODUCTION_KEY = "a-production-key-from-dotenv-0123456789abcdef"


def test_compose_secret_key_is_a_development_default_that_dotenv_replaces():
    """Bare `docker compose up` works; production sets its own key in .env."""
    default = service_env(compose_config({}), "signup")["SECRET_KEY"]
    chosen = service_env(compose_config({"SECRET_KEY": PRODUCTION_KEY}), "signup")

    assert "dev" in default
    signup_settings(service_env(compose_config({}), "signup"))  # long enough
    assert chosen["SECRET_KEY"] == PRODUCTION_KEY


def test_compose_secret_key_reaches_the_signup_service_only(config):
    assert service_env(config, "signup")["SECRET_KEY"]
    for service in ("migrate", "mailer", "postgres"):
        assert "SECRET_KEY" not in service_env(config, service), service


def test_compose_signup_counts_rate_limits_in_redis(config):
    env = service_env(config, "signup")
    settings = signup_settings(env)

    assert settings["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"
    assert settings["TRUSTED_PROXY_COUNT"] == 0


def test_compose_redis_is_pinned_and_healthchecked(config):
    redis = config["services"]["redis"]

    assert re.fullmatch(r"redis:7(\.\d+)*", redis["image"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "ports" not in redis  # reachable inside the compose network only


def test_compose_rate_limit_and_public_url_come_from_dotenv():
    config = compose_config(
        {
            "SIGNUP_RATE_LIMIT": "3/minute",
            "PUBLIC_BASE_URL": "https://signup.example.org",
        }
    )

    settings = signup_settings(service_env(config, "signup"))

    assert settings["SIGNUP_RATE_LIMIT"] == "3/minute"
    assert settings["PUBLIC_BASE_URL"] == "https://signup.example.org"
