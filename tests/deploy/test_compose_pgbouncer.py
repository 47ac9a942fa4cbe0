"""compose.yaml's pgbouncer profile: off by default, and through PgBouncer when on.

Offline, the profile's two switches are read where compose reads them: which
services run with and without the profile, and which URL each app gets from
the .env line that .env.example shows. For real, Debian's PgBouncer runs the
repository's deploy/pgbouncer/pgbouncer.ini (only its addresses and the user
list's path rewritten) with the user list the image's entrypoint would write,
in front of the test PostgreSQL; compose's signup and mailer commands then run
with the environment compose gives them when the profile is on, each compose
host name mapped to a port on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

from mailer_service.config import mailer_settings
from mailer_service.listener import APPLICATION_NAME
from signup_service.config import signup_settings
from tests.support import ROOT
from tests.support.databases import url_string
from tests.support.deployfiles import (
    active_services,
    compose_config,
    container_env,
    env_example_values,
    missing_dependencies,
    parse_duration,
    service_env,
)
from tests.support.gunicorn import compose_signup, http
from tests.support.outbox import all_sent, rows
from tests.support.pgbouncer import (
    REPO_INI,
    connect_string,
    ini_settings,
    repo_pgbouncer,
)
from tests.support.processes import (
    LoggedProcess,
    free_port,
    tcp_connections,
    wait_until,
)

PROFILE = "pgbouncer"
# The one .env line that sends the apps through PgBouncer, as .env.example has it.
PROFILE_DOTENV = {
    "APP_DATABASE_ADDRESS": env_example_values()["APP_DATABASE_ADDRESS"],
}
# What a bare `docker compose up` starts, before and after the profile existed.
DEFAULT_SERVICES = {"postgres", "migrate", "signup", "redis", "mailer", "mailpit"}
DIRECT = "postgres:5432"  # the postgres service, as the URLs name it
POLL = "3600"  # seconds: only a wake-up can deliver once the mailer is idle
STARTUP_TIMEOUT = 120.0  # seconds for the mailer to connect and go idle
WAKE_TIMEOUT = 120.0  # seconds for a woken delivery on a busy machine
PROBE_TIMEOUT = 60.0  # seconds for one run of the healthcheck's command
ADDRESS = "ada@example.com"


def address(url: str) -> str:
    """Return the ``host:port`` a database URL connects to."""
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port}"


def entrypoint_users(env: Mapping[str, str]) -> str:
    """Return the user list edoburu/pgbouncer's entrypoint writes from ``env``.

    The password goes in as it is when AUTH_TYPE is plain or scram-sha-256,
    and as its md5 hash otherwise, which a SCRAM login cannot use.
    """
    user, password = env["DB_USER"], env["DB_PASSWORD"]
    if env.get("AUTH_TYPE") not in ("plain", "scram-sha-256"):
        password = "md5" + hashlib.md5((password + user).encode()).hexdigest()
    return f'"{user}" "{password}"\n'


def on_this_machine(
    env: Mapping[str, str], addresses: Mapping[str, tuple[str, int]], database: str
) -> dict[str, str]:
    """Return ``env`` with its database URLs moved to local ports and ``database``.

    A URL naming an address that ``addresses`` lacks raises KeyError: every
    connection the service makes is one the test placed.
    """
    local = dict(env)
    for name in ("DATABASE_URL", "MAILER_LISTEN_URL"):
        if name in env:
            url = make_url(env[name])
            host, port = addresses[f"{url.host}:{url.port}"]
            local[name] = url_string(url.set(host=host, port=port, database=database))
    return local


@contextmanager
def profile_pgbouncer(server: URL, config: Mapping[str, Any]) -> Iterator[int]:
    """Run the profile's PgBouncer before ``server``; yield the port it listens on."""
    users = entrypoint_users(service_env(config, "pgbouncer"))
    with repo_pgbouncer(server, users) as port:
        yield port


def waiting_listener(engine: Engine) -> tuple[int, int, str] | None:
    """Return (pid, client port, application) of the idle mailer's listener.

    The listener puts its own backend's pid in outbox_waiters once a tick
    found nothing to send; pg_stat_activity tells who is at the other end.
    """
    found = rows(
        engine,
        "SELECT w.pid, a.client_port, a.application_name"
        " FROM outbox_waiters AS w JOIN pg_stat_activity AS a USING (pid)",
    )
    return found[0] if found else None


def test_compose_pgbouncer_runs_only_with_its_profile(config):
    """A bare `docker compose up` starts what it started before the profile."""
    assert config["services"][PROFILE]["profiles"] == [PROFILE]
    assert active_services(config) == DEFAULT_SERVICES
    assert active_services(config, [PROFILE]) == DEFAULT_SERVICES | {PROFILE}


@pytest.mark.parametrize(
    "profiles", [(), (PROFILE,), ("monitoring",), (PROFILE, "monitoring")]
)
def test_compose_profiles_leave_no_required_dependency_out(config, profiles):
    assert missing_dependencies(config, profiles) == []


def test_missing_dependencies_finds_a_required_one_left_out(config):
    """The check above can fail: without ``required: false`` signup needs it."""
    del config["services"]["signup"]["depends_on"][PROFILE]["required"]

    assert missing_dependencies(config) == [f"signup -> {PROFILE}"]
    assert missing_dependencies(config, [PROFILE]) == []


def test_compose_apps_wait_for_a_healthy_pgbouncer_when_it_runs(config):
    for service in ("signup", "mailer"):
        dependency = config["services"][service]["depends_on"][PROFILE]
        assert dependency == {"condition": "service_healthy", "required": False}
    assert config["services"][PROFILE]["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }


def test_compose_pgbouncer_is_pinned_healthchecked_and_unpublished(config):
    pgbouncer = config["services"][PROFILE]
    healthcheck = pgbouncer["healthcheck"]

    # A release of the image, such as v1.25.2-p0: never latest.
    assert re.fullmatch(r"edoburu/pgbouncer:v\d+\.\d+\.\d+-p\d+", pgbouncer["image"])
    assert "ports" not in pgbouncer  # like postgres: the compose network only
    assert pgbouncer.get("network_mode") is None
    assert pgbouncer["expose"] == ["6432"]
    test = healthcheck["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    # The port the file listens on: the real test below moves it, so it is
    # checked here.
    listen_port = ini_settings(REPO_INI.read_text())[("pgbouncer", "listen_port")]
    assert test[test.index("--port") + 1] == listen_port
    assert parse_duration(healthcheck["start_period"]) > 0


def test_compose_pgbouncer_runs_the_repository_ini(config):
    """The mounted file pools by transaction, on 6432, in front of postgres."""
    pgbouncer = config["services"][PROFILE]
    source, target, mode = pgbouncer["volumes"][0].split(":")
    settings = ini_settings(REPO_INI.read_text())

    assert pgbouncer["volumes"] == [f"{source}:{target}:{mode}"]
    assert (ROOT / source).resolve() == REPO_INI and mode == "ro"
    # The image's command reads this path, and its entrypoint writes the
    # user list where the file looks for it unless AUTH_FILE says otherwise.
    assert target == "/etc/pgbouncer/pgbouncer.ini"
    assert "command" not in pgbouncer and "entrypoint" not in pgbouncer
    assert "AUTH_FILE" not in service_env(config, PROFILE)
    assert settings[("pgbouncer", "auth_file")] == "/etc/pgbouncer/userlist.txt"
    assert settings[("pgbouncer", "pool_mode")] == "transaction"
    assert settings[("pgbouncer", "listen_port")] in pgbouncer["expose"]
    host, _, port = DIRECT.partition(":")
    assert connect_string(settings[("databases", "*")]) == f"host={host} port={port}"


def test_compose_pgbouncer_logs_in_with_the_postgres_password():
    """Its user list is written from the password .env gives postgres."""
    for dotenv in ({}, {"POSTGRES_PASSWORD": "from-dotenv"}):
        config = compose_config({**PROFILE_DOTENV, **dotenv})
        env = service_env(config, PROFILE)
        direct = make_url(service_env(config, "migrate")["DATABASE_URL"])
        auth_type = ini_settings(REPO_INI.read_text())[("pgbouncer", "auth_type")]

        assert env["AUTH_TYPE"] == auth_type == "scram-sha-256"
        assert entrypoint_users(env) == f'"{direct.username}" "{direct.password}"\n'
        assert direct.password == service_env(config, "postgres")["POSTGRES_PASSWORD"]


def test_compose_profile_sends_signup_and_mailer_through_pgbouncer():
    """On: signup and the mailers' DATABASE_URL; LISTEN and migrations stay direct."""
    pooled = PROFILE_DOTENV["APP_DATABASE_ADDRESS"]
    host, _, port = pooled.partition(":")
    settings = ini_settings(REPO_INI.read_text())
    assert host == PROFILE and port == settings[("pgbouncer", "listen_port")]

    for dotenv, apps in (({}, DIRECT), (PROFILE_DOTENV, pooled)):
        config = compose_config(dotenv)
        env = {name: service_env(config, name) for name in config["services"]}
        for service in ("signup", "mailer"):
            assert address(env[service]["DATABASE_URL"]) == apps, service
        for service in ("migrate", "status"):
            assert address(env[service]["DATABASE_URL"]) == DIRECT, service
        assert address(env["mailer"]["MAILER_LISTEN_URL"]) == DIRECT
        # Only the address changes: the same user, password and database.
        direct = make_url(env["migrate"]["DATABASE_URL"])
        through = make_url(env["signup"]["DATABASE_URL"])
        assert through.set(host=direct.host, port=direct.port) == direct


def test_compose_profile_env_is_a_valid_configuration():
    config = compose_config(PROFILE_DOTENV)
    mailer = mailer_settings(service_env(config, "mailer"))

    assert make_url(mailer["SQLALCHEMY_DATABASE_URI"]).host == PROFILE
    assert mailer["MAILER_LISTEN_URL"].host == "postgres"
    signup = signup_settings(service_env(config, "signup"))
    assert make_url(signup["SQLALCHEMY_DATABASE_URI"]).host == PROFILE


@pytest.mark.slow
def test_compose_pgbouncer_healthcheck_passes_only_while_it_runs(pg_url):
    config = compose_config(PROFILE_DOTENV)
    test = config["services"][PROFILE]["healthcheck"]["test"]
    assert test[test.index("--host") + 1] == "127.0.0.1"  # itself, in its container
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def probe(port: int) -> subprocess.CompletedProcess[str]:
        """Run the healthcheck's command against PgBouncer on ``port``."""
        command = list(test[1:])
        command[command.index("--port") + 1] = str(port)
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )

    with profile_pgbouncer(pg_url, config) as port:
        running = probe(port)

    assert running.returncode == 0, running.stdout + running.stderr
    assert probe(port).returncode != 0  # the same check fails once it is gone


@pytest.mark.slow
def test_compose_pgbouncer_asks_for_the_postgres_password(pg_url):
    """Unpublished is not open: a client without the password is turned away."""
    config = compose_config(PROFILE_DOTENV)
    password = service_env(config, "postgres")["POSTGRES_PASSWORD"]

    def select_one(port: int, secret: str) -> int:
        """Return SELECT 1 through PgBouncer on ``port``, logged in with ``secret``."""
        url = pg_url.set(port=port, password=secret, drivername="postgresql")
        with psycopg.connect(url_string(url), connect_timeout=30) as connection:
            return connection.execute("SELECT 1").fetchone()[0]

    with profile_pgbouncer(pg_url, config) as port:
        assert select_one(port, password) == 1
        with pytest.raises(psycopg.OperationalError, match="authentication failed"):
            select_one(port, "not-" + password)


@pytest.mark.slow
def test_compose_signup_and_mailer_work_through_the_profile(pg_url, smtp, tmp_path):
    """A signup through PgBouncer is mailed by a mailer woken over a direct LISTEN."""
    config = compose_config({**PROFILE_DOTENV, "MAILER_POLL_INTERVAL": POLL})
    server_port = int(pg_url.port or 5432)
    engine = create_engine(pg_url, poolclass=NullPool)
    with profile_pgbouncer(pg_url, config) as port:
        addresses = {
            DIRECT: (str(pg_url.host), server_port),
            PROFILE_DOTENV["APP_DATABASE_ADDRESS"]: ("127.0.0.1", port),
        }
        here = {"addresses": addresses, "database": str(pg_url.database)}
        signup_env = container_env(
            **{
                **on_this_machine(service_env(config, "signup"), **here),
                # Redis is another test's subject (tests/signup/test_rate_limit.py).
                "RATELIMIT_STORAGE_URI": "memory://",
            }
        )
        mailer_env = container_env(
            **{
                **on_this_machine(service_env(config, "mailer"), **here),
                "MAIL_SERVER": "127.0.0.1",
                "MAIL_PORT": str(smtp.port),
                "MAILER_METRICS_HOST": "127.0.0.1",
                "MAILER_METRICS_PORT": str(free_port()),
            }
        )
        mailer = LoggedProcess(
            config["services"]["mailer"]["command"],
            mailer_env,
            ROOT,
            tmp_path / "mailer.log",
        )
        try:
            # Idle and listening: the start-up tick is over, so only a
            # notification on the listener's connection can deliver from here.
            assert wait_until(lambda: waiting_listener(engine), STARTUP_TIMEOUT), (
                mailer.log()
            )
            listener = waiting_listener(engine)
            connections = tcp_connections(mailer.proc.pid)
            web = compose_signup(signup_env, tmp_path / "web.log")
            try:
                assert http(f"{web.base}/signup", {"email": ADDRESS})[0] == 201
                assert wait_until(all_sent(engine, 1), WAKE_TIMEOUT), mailer.log()
            finally:
                assert web.stop() == 0, web.log()
            assert mailer.terminate() == 0, mailer.log()
        finally:
            mailer.stop_quietly()
    engine.dispose()

    assert [str(m["To"]) for m in smtp.messages] == [ADDRESS]
    assert listener is not None
    _pid, client_port, application = listener
    assert application == APPLICATION_NAME
    # The listener's backend talks to the mailer itself, not to PgBouncer: it is
    # the mailer's one direct connection, and the rest go through PgBouncer.
    direct = {local for local, remote in connections if remote == server_port}
    assert direct == {client_port}, connections
    assert any(remote == port for _local, remote in connections), connections
