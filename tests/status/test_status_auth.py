"""The admin token, the session value and the CSRF token, without a database."""

from __future__ import annotations

import subprocess

import pytest

from mailer_service.status_auth import (
    SESSION_SECONDS,
    Gate,
    admin_token,
    from_this_site,
)
from outbox_contract.settings import ConfigError
from tests.support import VENV_BIN
from tests.support.processes import child_env
from tests.support.status_rows import ADMIN_TOKEN

NOW = 1_800_000_000.0  # a fixed moment, in Unix seconds


def test_admin_token_unset_or_blank_means_read_only():
    assert admin_token({}) is None
    assert admin_token({"OUTBOX_ADMIN_TOKEN": "  "}) is None


def test_admin_token_is_read_stripped():
    assert admin_token({"OUTBOX_ADMIN_TOKEN": f" {ADMIN_TOKEN}\n"}) == ADMIN_TOKEN


def test_admin_token_shorter_than_32_characters_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"OUTBOX_ADMIN_TOKEN must be at least 32"):
        admin_token({"OUTBOX_ADMIN_TOKEN": "x" * 31})


def test_outbox_serve_refuses_a_short_admin_token(tmp_path):
    result = subprocess.run(
        [str(VENV_BIN / "outbox"), "serve", "--port", "1"],
        env=child_env(
            DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", OUTBOX_ADMIN_TOKEN="short"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "Error: OUTBOX_ADMIN_TOKEN must be at least 32 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_gate_accepts_only_the_token():
    gate = Gate(ADMIN_TOKEN)

    assert gate.token_matches(ADMIN_TOKEN)
    for wrong in ("", ADMIN_TOKEN.upper(), ADMIN_TOKEN[:-1], "ü" * 40):
        assert not gate.token_matches(wrong)


def test_gate_sessions_are_distinct_and_expire():
    gate = Gate(ADMIN_TOKEN)
    first, second = gate.new_session(NOW), gate.new_session(NOW)

    assert first != second and ADMIN_TOKEN not in first
    assert gate.session_valid(first, NOW + SESSION_SECONDS - 1)
    assert not gate.session_valid(first, NOW + SESSION_SECONDS)
    assert not gate.session_valid(first, NOW - 60)  # issued in the future
    assert not Gate("another-admin-token-" + "y" * 20).session_valid(first, NOW)


@pytest.mark.parametrize(
    "value", [None, "", "abc", "1.2", "1.2.3.4", "x.y.z", "é.é.é", "..", "1..z"]
)
def test_gate_refuses_malformed_sessions(value):
    assert not Gate(ADMIN_TOKEN).session_valid(value, NOW)


def test_csrf_token_is_bound_to_its_session():
    gate = Gate(ADMIN_TOKEN)
    session = gate.new_session(NOW)
    token = gate.csrf_token(session)

    assert gate.csrf_valid(session, token)
    assert not gate.csrf_valid(gate.new_session(NOW), token)
    assert not gate.csrf_valid(session, token.upper())
    assert not gate.csrf_valid(session, "")
    assert not gate.csrf_valid(None, token)
    assert not Gate("another-admin-token-" + "y" * 20).csrf_valid(session, token)


@pytest.mark.parametrize(
    ("origin", "referer", "ok"),
    [
        (None, None, True),  # curl: the CSRF token still has to match
        ("http://127.0.0.1:8001", None, True),
        ("HTTP://127.0.0.1:8001", None, True),
        (None, "http://127.0.0.1:8001/rows/3", True),
        ("http://127.0.0.1:8002", None, False),
        ("https://evil.example", "http://127.0.0.1:8001/", False),
        ("null", None, False),
        (None, "https://evil.example/", False),
        ("", None, False),
    ],
)
def test_from_this_site_checks_origin_then_referer(origin, referer, ok):
    assert from_this_site(origin, referer, "127.0.0.1:8001") is ok
