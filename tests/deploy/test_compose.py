"""compose.yaml is valid, names real entry points, and its settings hold together.

No Docker engine runs here: the file is checked against the Compose
Specification offline, its environment goes through the services' own config
parsers, and test_entrypoints.py runs each service's command for real.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

from mailer_service.config import (
    LEASE_TIMEOUT_RATIO,
    load_mailer_settings,
    mailer_settings,
)
from signup_service.config import signup_settings
from tests.support import VENV_BIN
from tests.support.deployfiles import (
    COMPOSE_FILE,
    compose_config,
    compose_required_variables,
    compose_variables,
    dockerfile_cmd,
    env_example_names,
    parse_duration,
    service_env,
    unknown_env_names,
)

APP_SERVICES = ("migrate", "signup", "mailer", "status")


def check_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    """Validate ``path`` against the Compose Specification bundled with the tool."""
    return subprocess.run(
        [
            str(VENV_BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_matches_the_compose_spec():
    result = check_compose_spec(COMPOSE_FILE)

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_rejects_an_unknown_condition(tmp_path):
    """The schema check can fail: a misspelt depends_on condition is refused."""
    broken = tmp_path / "compose.yaml"
    text = COMPOSE_FILE.read_text()
    assert "service_completed_successfully" in text
    broken.write_text(text.replace("service_completed_successfully", "service_done"))

    result = check_compose_spec(broken)

    assert result.returncode != 0
    assert "service_done" in result.stdout + result.stderr


def test_compose_needs_no_dotenv():
    """A fresh clone starts with a bare `docker compose up`: nothing is required."""
    assert compose_required_variables() == set()
    compose_config({})  # interpolates with an empty environment, no error


def test_compose_required_variables_finds_both_forms(tmp_path):
    """The check above can fail: ``${X:?...}`` and ``${Y?...}`` are both found."""
    path = tmp_path / "compose.yaml"
    path.write_text("a: ${X:?set X}\nb: ${Y?}\nc: ${Z:-z}\nd: $$W\n")

    assert compose_required_variables(path) == {"X", "Y"}


def test_compose_postgres_publishes_no_port(config):
    """The development password is safe only because nothing outside reaches it."""
    postgres = config["services"]["postgres"]

    assert "ports" not in postgres
    assert postgres.get("network_mode") is None  # not the host's network either


def test_compose_database_url_carries_the_postgres_password():
    """One password, whether the development default or the one .env sets."""
    for dotenv in ({}, {"POSTGRES_PASSWORD": "from-dotenv"}):
        config = compose_config(dotenv)
        password = service_env(config, "postgres")["POSTGRES_PASSWORD"]
        assert password == dotenv.get("POSTGRES_PASSWORD", "compose-dev-only")
        for service in APP_SERVICES:
            assert service_env(config, service)["DATABASE_URL"] == (
                f"postgresql://postgres:{password}@postgres:5432/postgres"
            )


def test_compose_app_env_is_a_valid_configuration(config):
    """The defaults pass the services' own start-up checks and point at mailpit."""
    signup_settings(service_env(config, "signup"))
    mailer = service_env(config, "mailer")
    settings = load_mailer_settings(mailer)

    assert mailer_settings(mailer)["MAIL_SERVER"] == "mailpit"
    assert settings.mail_timeout == 10


def test_compose_env_override_from_dotenv_reaches_the_services():
    config = compose_config({"MAIL_SERVER": "smtp.example.org"})

    assert service_env(config, "signup")["MAIL_SERVER"] == "smtp.example.org"
    assert service_env(config, "mailer")["MAIL_SERVER"] == "smtp.example.org"


def test_compose_app_env_names_are_read_by_the_code(config):
    for service in APP_SERVICES:
        assert unknown_env_names(service_env(config, service)) == set(), service


def test_unknown_env_names_reports_a_name_no_service_reads():
    assert unknown_env_names({"MAIL_SERVER", "MAIL_TIMEOUTS"}) == {"MAIL_TIMEOUTS"}
    # A Flask config key the code sets is not a variable it reads.
    assert unknown_env_names({"MAIL_SUPPRESS_SEND"}) == {"MAIL_SUPPRESS_SEND"}


def test_env_example_lists_every_compose_variable():
    assert env_example_names() == compose_variables()


def test_mailer_grace_period_outlasts_the_message_in_flight(config):
    """Docker's SIGKILL comes after the worst-case send of the last message."""
    mailer = config["services"]["mailer"]
    grace = parse_duration(mailer["stop_grace_period"])
    mail_timeout = load_mailer_settings(service_env(config, "mailer")).mail_timeout

    assert grace > LEASE_TIMEOUT_RATIO * mail_timeout
    assert grace > 10  # docker stop's default, which would cut a send short
    assert mailer["deploy"]["replicas"] == 2


def test_parse_duration_reads_compose_durations():
    assert parse_duration("50s") == 50
    assert parse_duration("1m30s") == 90
    with pytest.raises(ValueError, match="not a compose duration"):
        parse_duration("50 seconds")


def test_compose_services_start_in_order(config):
    services = config["services"]
    conditions = {
        name: {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        for name, service in services.items()
        if "depends_on" in service
    }

    assert conditions["migrate"] == {"postgres": "service_healthy"}
    assert conditions["signup"] == {
        "migrate": "service_completed_successfully",
        "redis": "service_healthy",
        "pgbouncer": "service_healthy",  # only with its profile: not required
    }
    assert conditions["mailer"]["migrate"] == "service_completed_successfully"


def test_compose_images_are_pinned_and_postgres_has_a_healthcheck(config):
    services = config["services"]
    healthcheck = services["postgres"]["healthcheck"]

    assert re.fullmatch(r"postgres:1[67](\.\d+)?", services["postgres"]["image"])
    assert re.fullmatch(
        r"axllent/mailpit:v\d+\.\d+(\.\d+)?", services["mailpit"]["image"]
    )
    assert healthcheck["test"][:2] == ["CMD", "pg_isready"]
    assert parse_duration(healthcheck["start_period"]) > 0
    assert "/var/lib/postgresql/data" in str(services["postgres"]["volumes"])


def test_compose_commands_are_the_packaged_entry_points(config):
    services = config["services"]

    assert services["migrate"]["command"] == [
        "sh", "-c", "alembic upgrade head && outbox migrate"
    ]  # fmt: skip
    assert services["mailer"]["command"] == ["python", "-m", "mailer_service"]
    assert importlib.util.find_spec("mailer_service.__main__") is not None
    # The image's default command is the signup service, exactly as compose runs it.
    assert services["signup"]["command"] == dockerfile_cmd()
    assert services["signup"]["command"][-1] == "signup_service:create_app()"
