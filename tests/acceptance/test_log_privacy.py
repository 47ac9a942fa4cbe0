"""A full run logs no recipient address, no mail body and no password.

Two people sign up through the real signup service (gunicorn, as compose runs
it); a real mailer logs in to an SMTP server that demands a password, delivers
one mail and has the other refused with a reply that quotes the address. Every
line both processes wrote is then searched, in both log formats. A second run
adds the failure paths: a database role with a password, a database outage
mid-run and a failed STARTTLS.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool

from tests.support.apps import TEST_APP_ENV
from tests.support.databases import url_string
from tests.support.gunicorn import compose_signup, http
from tests.support.outbox import outbox_columns
from tests.support.processes import MailerProcess, child_env, wait_until
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.slow

USERNAME = "outbox-relay"
PASSWORD = "s3cret-Pa55word-never-logged"
REFUSED, ACCEPTED = "ada.lovelace@example.com", "grace.hopper@example.com"
REPLY = f"550 5.1.1 <{REFUSED}>: Recipient address rejected: no such user"
BODY_LINES = ("Thanks for signing up with", "Your account is ready")


class PasswordCheck:
    """aiosmtpd authenticator: only USERNAME with PASSWORD gets in; counts logins."""

    def __init__(self) -> None:
        self.logins = 0

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        """Accept the one right login/password pair."""
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (USERNAME, PASSWORD)
        self.logins += ok
        return AuthResult(success=ok)


@pytest.fixture
def smtp_with_login() -> Iterator[tuple[SmtpServer, PasswordCheck]]:
    """An SMTP server that offers AUTH without TLS (loopback only) and counts logins."""
    check = PasswordCheck()
    with SmtpServer(authenticator=check, auth_require_tls=False) as server:
        yield server, check


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_full_run_logs_no_address_body_or_password(
    pg_url: URL, smtp_with_login, tmp_path, log_format
):
    smtp, check = smtp_with_login
    smtp.fail_next(REPLY)
    env = child_env(
        DATABASE_URL=url_string(pg_url),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAIL_USERNAME=USERNAME,
        MAIL_PASSWORD=PASSWORD,
        LOG_FORMAT=log_format,
        **TEST_APP_ENV,
    )
    web = compose_signup(env, tmp_path / "web.log")
    try:
        for address in (REFUSED, ACCEPTED):
            assert http(f"{web.base}/signup", {"email": address})[0] == 201
        mailer = MailerProcess(
            tmp_path / "mailer.log", **env, MAIL_TIMEOUT="2", MAILER_POLL_INTERVAL="0.1"
        )
        try:
            assert wait_until(
                # Either row may meet the one refusal: two SMTP workers send.
                lambda: (
                    sorted(s for (s,) in outbox_columns(pg_url, "status"))
                    == ["failed", "sent"]
                ),
                60,
            ), mailer.log()
        finally:
            assert mailer.terminate() == 0
    finally:
        assert web.stop() == 0

    logs = {"web": web.log(), "mailer": mailer.log()}
    everything = "\n".join(logs.values())
    # The run did what it should, and said so.
    assert check.logins >= 1 and len(smtp.messages) == 1
    errors = [e for (e,) in outbox_columns(pg_url, "last_error") if e]
    assert errors == [REPLY]  # the whole reply stays on the row
    assert "code" in logs["mailer"] and "550" in logs["mailer"]
    assert "[address]" in logs["mailer"]
    assert "signup" in logs["web"]
    # ... and nothing personal or secret reached a log.
    for secret in (REFUSED, ACCEPTED, PASSWORD, *BODY_LINES):
        assert secret.lower() not in everything.lower(), secret
    assert "@example.com" not in everything
    if log_format == "json":
        assert_json_lines(logs["mailer"])


def assert_json_lines(log: str) -> None:
    """Every line is one JSON object; each outcome carries its structured fields."""
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    outcomes = [e for e in entries if e.get("action") == "deliver"]
    assert sorted(e["result"] for e in outcomes) == ["failed", "sent"]
    for entry in outcomes:
        assert {"outbox_id", "attempt", "code", "latency_ms", "mailer_id"} <= set(entry)
    [failed] = [e for e in outcomes if e["result"] == "failed"]
    assert failed["code"] == 550
    assert failed["message"].startswith("delivery failed: 550 5.1.1 <[address]>")


DB_PASSWORD = "db-Pa55word-never-logged"
DB_ROLE_PREFIX = "outbox_private_"  # one role per run: roles are cluster-wide
END_SESSIONS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role"
)


@pytest.fixture
def password_role(pg_url: URL) -> Iterator[URL]:
    """A role with a password that owns nothing but may use the test's tables."""
    role = f"{DB_ROLE_PREFIX}{secrets.token_hex(4)}"
    admin = create_engine(pg_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{DB_PASSWORD}'"))
        for grant in (
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
            f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
        ):
            connection.execute(text(grant))
    try:
        yield pg_url.set(username=role, password=DB_PASSWORD)
    finally:
        with admin.connect() as connection:
            connection.execute(END_SESSIONS, {"role": role})
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def set_login(url: URL, role: str, allowed: bool) -> None:
    """Let ``role`` log in, or refuse it and end every session it has."""
    admin = create_engine(
        url.set(username="postgres", password=None),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(
            text(f"ALTER ROLE {role} {'LOGIN' if allowed else 'NOLOGIN'}")
        )
        if not allowed:
            connection.execute(END_SESSIONS, {"role": role})
    admin.dispose()


def test_failures_log_no_password_body_or_confirmation_token(
    password_role: URL, smtp_with_login, tmp_path
):
    """A database outage and a failed STARTTLS, with a password on both ends.

    The database role has a password (in DATABASE_URL), the SMTP server
    demands one, STARTTLS fails on every attempt, and mid-run the database
    refuses the mailer's role. Every error is logged; none of the logs may
    hold a password, a line of the mail, a confirmation link or an address.
    """
    smtp, _check = smtp_with_login
    role = password_role.username
    env = child_env(
        DATABASE_URL=password_role.render_as_string(hide_password=False),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAIL_USERNAME=USERNAME,
        MAIL_PASSWORD=PASSWORD,
        MAIL_USE_TLS="true",  # the server offers no STARTTLS: every send fails
        **TEST_APP_ENV,
    )
    web = compose_signup(env, tmp_path / "web.log")
    try:
        for address in (REFUSED, ACCEPTED):
            assert http(f"{web.base}/signup", {"email": address})[0] == 201
        mailer = MailerProcess(
            tmp_path / "mailer.log",
            **env,
            MAIL_TIMEOUT="2",
            MAILER_POLL_INTERVAL="0.1",
            MAILER_BACKOFF_SECONDS="0.2",
        )
        try:
            assert wait_until(lambda: "STARTTLS" in mailer.log(), 60), mailer.log()
            set_login(password_role, role, allowed=False)
            assert wait_until(lambda: "tick_failed" in mailer.log(), 60), mailer.log()
            set_login(password_role, role, allowed=True)
            assert wait_until(lambda: "database is back" in mailer.log(), 60), (
                mailer.log()
            )
        finally:
            assert mailer.terminate() == 0
    finally:
        assert web.stop() == 0

    logs = {"web": web.log(), "mailer": mailer.log()}
    everything = "\n".join(logs.values())
    assert not smtp.messages  # nothing went through without TLS
    for secret in (DB_PASSWORD, PASSWORD, REFUSED, ACCEPTED, *BODY_LINES):
        assert secret.lower() not in everything.lower(), secret
    assert "/confirm/" not in everything
    assert "@example.com" not in everything
