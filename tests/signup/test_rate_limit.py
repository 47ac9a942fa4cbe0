"""Abuse limits on POST /signup: per client address, 429 with Retry-After."""

from __future__ import annotations

import logging
import socket
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient

from outbox_contract.settings import ConfigError
from signup_service.config import signup_settings
from tests.signup.test_api import counts
from tests.support.optional import skip_or_fail

REDIS = ("127.0.0.1", 6379)


def post(client: FlaskClient, n: int, **kwargs) -> int:
    """POST signup number ``n``; return the status."""
    response = client.post("/signup", json={"email": f"u{n}@example.com"}, **kwargs)
    return response.status_code


def from_address(address: str, forwarded_for: str | None = None) -> dict:
    """Test-client options for a request from ``address``, maybe with a header."""
    options: dict = {"environ_overrides": {"REMOTE_ADDR": address}}
    if forwarded_for is not None:
        options["headers"] = {"X-Forwarded-For": forwarded_for}
    return options


@pytest.fixture
def limited(make_app) -> Flask:
    """A signup app that allows three signups a minute per client address."""
    return make_app(SIGNUP_RATE_LIMIT="3/minute")


def test_rate_limit_fourth_signup_in_a_minute_is_429(limited):
    client = limited.test_client()
    assert [post(client, n) for n in range(3)] == [201, 201, 201]

    response = client.post("/signup", json={"email": "late@example.com"})

    assert response.status_code == 429
    assert response.mimetype == "application/json"
    assert "too many signups" in response.get_json()["error"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_rate_limit_429_writes_nothing(limited, engine):
    client = limited.test_client()
    for n in range(5):
        post(client, n)

    assert counts(engine) == (3, 3)


def test_rate_limit_counts_each_address_apart(limited):
    client = limited.test_client()
    ada = from_address("198.51.100.1")
    bob = from_address("198.51.100.2")

    assert [post(client, n, **ada) for n in range(4)] == [201, 201, 201, 429]
    assert post(client, 10, **bob) == 201


def test_rate_limit_ignores_x_forwarded_for_without_trusted_proxies(limited):
    """A client cannot get a fresh allowance by inventing its own address."""
    client = limited.test_client()
    statuses = [
        post(client, n, **from_address("198.51.100.1", f"203.0.113.{n}"))
        for n in range(4)
    ]

    assert statuses == [201, 201, 201, 429]


def test_rate_limit_behind_one_trusted_proxy_counts_the_forwarded_client(make_app):
    app = make_app(SIGNUP_RATE_LIMIT="2/minute", TRUSTED_PROXY_COUNT="1")
    client = app.test_client()
    proxy = "10.0.0.1"

    ada = [post(client, n, **from_address(proxy, "203.0.113.7")) for n in range(3)]
    bob = post(client, 9, **from_address(proxy, "203.0.113.8"))

    assert ada == [201, 201, 429]
    assert bob == 201


def test_rate_limit_behind_a_proxy_spoofed_entries_do_not_help(make_app):
    """The client's own X-Forwarded-For entries come before our proxy's one."""
    app = make_app(SIGNUP_RATE_LIMIT="2/minute", TRUSTED_PROXY_COUNT="1")
    client = app.test_client()

    statuses = [
        post(client, n, **from_address("10.0.0.1", f"192.0.2.{n}, 203.0.113.7"))
        for n in range(3)
    ]

    assert statuses == [201, 201, 429]


def test_rate_limit_applies_to_signup_only(limited):
    client = limited.test_client()
    for n in range(4):
        post(client, n)

    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_rate_limit_apps_keep_their_own_counts(make_app):
    """Two apps in one process (as in tests, or two app factories) share nothing."""
    first = make_app(SIGNUP_RATE_LIMIT="1/minute").test_client()
    second = make_app(SIGNUP_RATE_LIMIT="1/minute").test_client()

    assert post(first, 1) == 201
    assert post(second, 2) == 201


def test_rate_limit_logs_the_refusal(limited, caplog):
    client = limited.test_client()
    with caplog.at_level(logging.WARNING, logger="signup_service"):
        for n in range(4):
            post(client, n)

    assert "rate limited" in caplog.text


def redis_up() -> bool:
    """Tell whether a Redis server answers on 127.0.0.1:6379."""
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


def test_rate_limit_in_redis_is_shared_by_workers(make_app):
    """Two apps (two gunicorn workers) on one Redis share one count."""
    if not redis_up():
        skip_or_fail("no Redis on 127.0.0.1:6379 (apt-get install redis-server)")
    storage = f"redis://{REDIS[0]}:{REDIS[1]}/0"
    # A fresh address for each run: the counts outlive the test in Redis.
    address = from_address(f"2001:db8::{uuid.uuid4().hex[:4]}")
    env = {"SIGNUP_RATE_LIMIT": "2/minute", "RATELIMIT_STORAGE_URI": storage}
    one, two = (make_app(**env).test_client() for _ in range(2))

    statuses = [post(one, 1, **address), post(two, 2, **address)]
    statuses += [post(one, 3, **address), post(two, 4, **address)]

    assert statuses == [201, 201, 429, 429]


def test_rate_limit_storage_down_falls_back_to_memory(make_app, caplog):
    """A dead Redis must not turn signups into 500s: count in memory, say so."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(
        SIGNUP_RATE_LIMIT="2/minute",
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0",
    )
    client = app.test_client()

    with caplog.at_level(logging.WARNING):
        statuses = [post(client, n) for n in range(3)]

    assert statuses == [201, 201, 429]
    assert "falling back to in-memory storage" in caplog.text


def test_rate_limit_default_is_ten_a_minute_in_memory():
    settings = signup_settings({"DATABASE_URL": "sqlite://"})

    assert settings["SIGNUP_RATE_LIMIT"] == "10/minute"
    assert settings["RATELIMIT_STORAGE_URI"] == "memory://"
    assert settings["TRUSTED_PROXY_COUNT"] == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIGNUP_RATE_LIMIT": "lots"}, "SIGNUP_RATE_LIMIT must be a rate limit"),
        ({"RATELIMIT_STORAGE_URI": "postgres://db"}, "RATELIMIT_STORAGE_URI"),
        ({"RATELIMIT_STORAGE_URI": "redis"}, "RATELIMIT_STORAGE_URI"),
        ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT must be at least 0"),
        ({"TRUSTED_PROXY_COUNT": "one"}, "TRUSTED_PROXY_COUNT must be an integer"),
    ],
)
def test_rate_limit_settings_reject_bad_values(env, message):
    with pytest.raises(ConfigError, match=message):
        signup_settings({"DATABASE_URL": "sqlite://", **env})


def test_rate_limit_accepts_several_limits():
    settings = signup_settings(
        {"DATABASE_URL": "sqlite://", "SIGNUP_RATE_LIMIT": "5/minute;50 per hour"}
    )

    assert settings["SIGNUP_RATE_LIMIT"] == "5/minute;50 per hour"
