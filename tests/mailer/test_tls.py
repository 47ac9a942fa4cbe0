"""SMTP over TLS is verified: trusted certificates deliver, others never see a password.

The servers are real (aiosmtpd) with certificates from a throwaway CA
(trustme); the mailer trusts that CA only when MAIL_TLS_CA_FILE names it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trustme

from mailer_service.config import mailer_settings
from outbox_contract.settings import ConfigError, mail_settings
from tests.support.outbox import outbox_rows, seed_outbox
from tests.support.smtp_tls import PASSWORD, USERNAME, TlsSmtpServer, write_ca

TLS_TIMEOUT = 10.0  # seconds per SMTP step: handshakes are slow on a busy machine
MODES = {"starttls": {"MAIL_USE_TLS": "true"}, "implicit": {"MAIL_USE_SSL": "true"}}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The CA that issues the servers' certificates."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The CA's certificate as a file, for MAIL_TLS_CA_FILE."""
    return str(write_ca(ca, tmp_path))


def tls_env(mode: str, **env: str) -> dict[str, str]:
    """Settings for ``mode`` with the test server's login."""
    return {**MODES[mode], "MAIL_USERNAME": USERNAME, "MAIL_PASSWORD": PASSWORD, **env}


@pytest.mark.parametrize("mode", MODES)
def test_tls_trusted_ca_delivers_with_login(make_mailer, engine, ca, ca_file, mode):
    seed_outbox(engine, 2)
    with TlsSmtpServer(ca, implicit=mode == "implicit") as server:
        mailer = make_mailer(
            port=server.port,
            env=tls_env(mode, MAIL_TLS_CA_FILE=ca_file),
            mail_timeout=TLS_TIMEOUT,
        )
        mailer.run_tick()

    assert [row["status"] for row in outbox_rows(engine)] == ["sent", "sent"]
    assert len(server.messages) == 2
    assert server.logins == [(USERNAME, PASSWORD)]  # one connection for the batch


@pytest.mark.parametrize("mode", MODES)
def test_tls_untrusted_certificate_is_refused_before_login(
    make_mailer, engine, ca, mode
):
    """The system's CAs do not know the test CA: no mail, no password sent."""
    seed_outbox(engine, 1)
    with TlsSmtpServer(ca, implicit=mode == "implicit") as server:
        make_mailer(
            port=server.port, env=tls_env(mode), mail_timeout=TLS_TIMEOUT
        ).run_tick()

    [row] = outbox_rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)  # transient: retried
    assert "CERTIFICATE_VERIFY_FAILED" in row["last_error"]
    assert "certificate" in row["last_error"]
    assert server.messages == []
    assert server.logins == []


@pytest.mark.parametrize("mode", MODES)
def test_tls_wrong_host_certificate_is_refused_before_login(
    make_mailer, engine, ca, ca_file, mode
):
    """Signed by the trusted CA, but for another name than MAIL_SERVER."""
    seed_outbox(engine, 1)
    with TlsSmtpServer(
        ca, implicit=mode == "implicit", names=("smtp.example.org",)
    ) as server:
        make_mailer(
            port=server.port,
            env=tls_env(mode, MAIL_TLS_CA_FILE=ca_file),
            mail_timeout=TLS_TIMEOUT,
        ).run_tick()

    [row] = outbox_rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "CERTIFICATE_VERIFY_FAILED" in row["last_error"]
    assert "127.0.0.1" in row["last_error"]  # the name it expected
    assert server.messages == []
    assert server.logins == []


def test_tls_server_refuses_login_before_starttls(ca):
    """The fixture itself: AUTH is not even offered on the plain connection."""
    import smtplib

    with TlsSmtpServer(ca, implicit=False) as server:
        client = smtplib.SMTP("127.0.0.1", server.port, timeout=TLS_TIMEOUT)
        try:
            client.ehlo()
            assert not client.has_extn("auth")
            with pytest.raises(smtplib.SMTPException):
                client.login(USERNAME, PASSWORD)
        finally:
            client.close()
    assert server.logins == []


@pytest.mark.parametrize("mode", MODES)
def test_tls_verify_false_delivers_to_an_untrusted_server(
    make_mailer, engine, ca, mode
):
    seed_outbox(engine, 1)
    with TlsSmtpServer(ca, implicit=mode == "implicit") as server:
        make_mailer(
            port=server.port,
            env=tls_env(mode, MAIL_TLS_VERIFY="false"),
            mail_timeout=TLS_TIMEOUT,
        ).run_tick()

    assert [row["status"] for row in outbox_rows(engine)] == ["sent"]
    assert server.logins == [(USERNAME, PASSWORD)]


def test_mail_tls_verify_defaults_to_true():
    settings = mail_settings({})

    assert settings["MAIL_TLS_VERIFY"] is True
    assert settings["MAIL_TLS_CA_FILE"] is None


def test_mail_tls_verify_false_warns_at_start(caplog):
    with caplog.at_level(logging.WARNING, logger="mailer_service"):
        mailer_settings({"DATABASE_URL": "sqlite://", "MAIL_TLS_VERIFY": "false"})

    assert "MAIL_TLS_VERIFY=false" in caplog.text


def test_mail_tls_verify_true_does_not_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="mailer_service"):
        mailer_settings({"DATABASE_URL": "sqlite://"})

    assert "MAIL_TLS_VERIFY" not in caplog.text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAIL_TLS_VERIFY": "maybe"}, "MAIL_TLS_VERIFY must be true or false"),
        ({"MAIL_TLS_CA_FILE": "/nonexistent/ca.pem"}, "not a readable file"),
    ],
)
def test_mail_tls_settings_reject_bad_values(env, message):
    with pytest.raises(ConfigError, match=message):
        mail_settings(env)


def test_mail_tls_ca_file_needs_verification(ca_file):
    with pytest.raises(ConfigError, match="no use with MAIL_TLS_VERIFY=false"):
        mail_settings({"MAIL_TLS_CA_FILE": ca_file, "MAIL_TLS_VERIFY": "false"})
