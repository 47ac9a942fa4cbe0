"""Each compose command runs for real, from a copy of the image's WORKDIR.

The commands come from compose.yaml unchanged (only gunicorn's bind address
moves to a free local port), with the environment compose gives the service
and the venv's bin first on PATH, standing in for the image's interpreter.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from outbox_contract.schema import OUTBOX_VERSION_TABLE, AppBase, OutboxBase
from signup_service.database import db
from tests.support import ROOT
from tests.support.databases import url_string
from tests.support.deployfiles import container_env, service_env
from tests.support.gunicorn import bound_to, http
from tests.support.processes import free_port, wait_until

STARTUP_TIMEOUT = 120.0  # seconds for gunicorn to answer; other tests share the CPUs
SHUTDOWN_TIMEOUT = 60.0  # seconds for gunicorn's graceful stop after SIGTERM
COMMAND_TIMEOUT = 120.0  # seconds for a one-shot command such as alembic


def run_command(
    command: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to completion, capturing its output."""
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def head_revision(pyproject: Path) -> str | None:
    """Return the head revision of the migrations that ``pyproject`` points at."""
    return ScriptDirectory.from_config(
        Config(toml_file=str(pyproject))
    ).get_current_head()


def test_compose_python_is_the_interpreter_under_test(config):
    """``python`` in a child resolves to this venv, so the commands run our code."""
    env = container_env(**service_env(config, "mailer"))

    result = run_command(["python", "-c", "import sys; print(sys.prefix)"], env)

    assert result.stdout.strip() == sys.prefix


def test_alembic_in_the_workdir_uses_the_repo_migrations(image_workdir):
    script = ScriptDirectory.from_config(
        Config(toml_file=str(image_workdir / "pyproject.toml"))
    )

    assert Path(script.dir) == image_workdir / "migrations"
    assert script.get_current_head() is not None
    assert script.get_current_head() == head_revision(ROOT / "pyproject.toml")


def test_compose_migrate_command_creates_the_schema(config, image_workdir, empty_url):
    # postgresql:// as compose writes it, not the driver-qualified test URL.
    url = empty_url.set(drivername=empty_url.get_backend_name())
    env = container_env(
        **{**service_env(config, "migrate"), "DATABASE_URL": url_string(url)}
    )

    result = run_command(config["services"]["migrate"]["command"], env, image_workdir)

    assert result.returncode == 0, result.stderr
    engine = create_engine(empty_url, poolclass=NullPool)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        version = connection.execute(text("SELECT version_num FROM alembic_version"))
        revision = version.scalar_one()
    engine.dispose()
    assert tables == {
        *AppBase.metadata.tables,
        *OutboxBase.metadata.tables,
        "alembic_version",
        OUTBOX_VERSION_TABLE,
    }
    assert revision == head_revision(image_workdir / "pyproject.toml")


def test_compose_migrate_command_fails_without_a_database(config, image_workdir):
    """A failed migration exits non-zero, so compose never starts the apps."""
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/postgres"
    env = container_env(**{**service_env(config, "migrate"), "DATABASE_URL": url})

    result = run_command(config["services"]["migrate"]["command"], env, image_workdir)

    assert result.returncode != 0
    assert "OperationalError" in result.stderr


def test_compose_mailer_command_stops_on_bad_configuration(
    config, image_workdir, tmp_path
):
    """The entry point is wired: it parses the env and exits 2 with the reason."""
    env = container_env(
        **{
            **service_env(config, "mailer"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'outbox.db'}",
            "MAIL_PORT": "nope",
        }
    )

    result = run_command(config["services"]["mailer"]["command"], env, image_workdir)

    assert result.returncode == 2, result.stderr
    assert "configuration error: MAIL_PORT must be an integer" in result.stderr


def test_signup_command_factory_builds_the_app(config, tmp_path):
    module_name, _, call = config["services"]["signup"]["command"][-1].partition(":")
    assert call.endswith("()")
    factory = getattr(importlib.import_module(module_name), call.removesuffix("()"))

    app = factory({"DATABASE_URL": f"sqlite:///{tmp_path / 'outbox.db'}"})

    try:
        assert isinstance(app, Flask)
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def signup_server(
    config, image_workdir, sqlite_template, tmp_path
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """The compose signup command on a free port and a migrated SQLite file."""
    port = free_port()
    database = sqlite_template.create_database(tmp_path)
    env = container_env(
        **{**service_env(config, "signup"), "DATABASE_URL": url_string(database)}
    )
    command = bound_to(config["services"]["signup"]["command"], f"127.0.0.1:{port}")
    log = tmp_path / "gunicorn.log"
    # A file, not a pipe: a full pipe would block gunicorn while nobody reads it.
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=image_workdir, env=env, stdout=output, stderr=output
        )
    yield process, port, log
    if process.poll() is None:
        process.kill()
        process.wait(timeout=SHUTDOWN_TIMEOUT)


def test_compose_signup_command_serves_until_sigterm(config, signup_server):
    process, port, log = signup_server
    base = f"http://127.0.0.1:{port}"
    healthcheck = config["services"]["signup"]["healthcheck"]["test"]
    assert healthcheck[0] == "CMD" and "127.0.0.1:8000/healthz" in healthcheck[-1]
    probe = [*healthcheck[1:-1], healthcheck[-1].replace(":8000/", f":{port}/")]
    probe_env = container_env()

    wait_until(
        lambda: process.poll() is not None or http(f"{base}/healthz")[0] == 200,
        STARTUP_TIMEOUT,
    )

    assert process.poll() is None, log.read_text()
    assert http(f"{base}/healthz")[0] == 200, log.read_text()
    assert http(f"{base}/readyz")[0] == 200, log.read_text()
    assert http(f"{base}/signup", {"email": "ada@example.com"})[0] == 201
    assert run_command(probe, probe_env).returncode == 0

    process.terminate()  # what `docker compose stop` sends first

    assert process.wait(timeout=SHUTDOWN_TIMEOUT) == 0, log.read_text()
    # The same probe fails once nothing answers, so the healthcheck can fail.
    assert run_command(probe, probe_env).returncode != 0
