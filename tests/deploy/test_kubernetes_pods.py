"""Each pod's command runs for real as its manifest has it: read-only but for emptyDirs.

The command and environment come from deploy/kubernetes (the Secret filled
with a test database), run from a copy of the image's WORKDIR inside a mount
namespace where every filesystem is read-only and each emptyDir is a fresh
tmpfs (tests/support/readonly.py). Only what must differ on this machine
changes: the database, SMTP and Redis addresses, and the listening ports.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, create_engine, inspect
from sqlalchemy.pool import NullPool

from tests.support.databases import url_string
from tests.support.deployfiles import container_env as process_env
from tests.support.gunicorn import bound_to, http
from tests.support.manifests import (
    applied_objects,
    container_env,
    find,
    only_container,
    pod_spec,
)
from tests.support.optional import skip_or_fail
from tests.support.processes import free_port, wait_until
from tests.support.readonly import readonly_root, readonly_root_available

STARTUP_TIMEOUT = 120.0  # seconds for gunicorn to answer; other tests share the CPUs
DELIVERY_TIMEOUT = 60.0  # seconds for the mailer to deliver the welcome mail
SHUTDOWN_TIMEOUT = 60.0  # seconds for a graceful stop after SIGTERM
COMMAND_TIMEOUT = 120.0  # seconds for the migration Job's command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _sandbox() -> None:
    """Skip (fail in CI), with the reason, where no mount namespace can be made."""
    reason = readonly_root_available()
    if reason:
        skip_or_fail(reason)


@pytest.fixture
def empty_pg_url(postgres_server) -> Iterator[URL]:
    """An empty PostgreSQL database, as a fresh install's."""
    url = postgres_server.create_empty_database()
    yield url
    postgres_server.drop_database(url)


class Pod:
    """One workload's container, laid out to run on this machine."""

    def __init__(
        self, kind: str, name: str, workdir: Path, scratch: Path, **overrides: str
    ) -> None:
        objects = applied_objects()
        workload = find(objects, kind, name)
        self.container = only_container(workload)
        # The Secret holds the test database; the overrides are this machine's.
        secrets = {
            "DATABASE_URL": overrides.pop("DATABASE_URL"),
            "SECRET_KEY": "test-secret-key-for-the-read-only-pods",
        }
        env = {**container_env(objects, self.container, secrets), **overrides}
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        self.emptydirs: list[Path] = []
        for mount in self.container["volumeMounts"]:
            assert "emptyDir" in volumes[mount["name"]]
            host = scratch / f"{name}-{mount['name']}"
            host.mkdir(parents=True)
            self.emptydirs.append(host)
            # Point the process at the stand-in for the manifest's path.
            if mount["mountPath"] == "/tmp":
                env["TMPDIR"] = str(host)
            for key, value in env.items():
                if value == mount["mountPath"]:
                    env[key] = str(host)
        self.env = process_env(**env)
        self.workdir = workdir

    def command(self, command: list[str] | None = None) -> list[str]:
        """Return the (given or manifest's) command wrapped in the sandbox."""
        command = command or self.container["command"]
        return readonly_root(command, self.workdir, self.emptydirs)

    def start(self, log: Path, command: list[str] | None = None) -> subprocess.Popen:
        """Start the command, its output going to ``log``."""
        with log.open("wb") as output:
            return subprocess.Popen(
                self.command(command),
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )


def stop(process: subprocess.Popen[Any]) -> int:
    """SIGTERM ``process`` as the kubelet does; return its exit status."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SHUTDOWN_TIMEOUT)
        raise


def test_readonly_root_allows_writes_only_to_the_emptydirs(image_workdir, tmp_path):
    """The sandbox can fail a pod: outside an emptyDir nothing can be written."""
    emptydir = tmp_path / "emptydir"
    emptydir.mkdir()
    probe = f"touch image-file; touch {emptydir}/emptydir-file && ls {emptydir}"

    result = subprocess.run(
        readonly_root(["sh", "-c", probe], image_workdir, [emptydir]),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )

    assert "'image-file': Read-only file system" in result.stderr
    assert result.stdout.split() == ["emptydir-file"]
    assert not (image_workdir / "image-file").exists()
    assert list(emptydir.iterdir()) == []  # the tmpfs went away with the pod


def test_kubernetes_pods_run_read_only(image_workdir, empty_pg_url, smtp, tmp_path):
    """Migrate, then sign up, then the mailer delivers; SIGTERM stops both cleanly."""
    database = url_string(empty_pg_url.set(drivername="postgresql"))
    site = {"DATABASE_URL": database}
    migrate = Pod("Job", "outbox-migrate", image_workdir, tmp_path, **site)

    result = subprocess.run(
        migrate.command(), env=migrate.env, capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    engine = create_engine(empty_pg_url, poolclass=NullPool)
    with engine.connect() as connection:
        assert {"users", "outbox"} <= set(inspect(connection).get_table_names())
    engine.dispose()

    port = free_port()
    signup = Pod(
        "Deployment", "outbox-signup", image_workdir, tmp_path, **site,
        RATELIMIT_STORAGE_URI="memory://",  # no Redis on this machine
    )  # fmt: skip
    mailer = Pod(
        "Deployment", "outbox-mailer", image_workdir, tmp_path, **site,
        MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp.port), MAIL_USE_TLS="false",
        MAILER_METRICS_HOST="127.0.0.1", MAILER_METRICS_PORT=str(free_port()),
    )  # fmt: skip
    web_log, mailer_log = tmp_path / "signup.log", tmp_path / "mailer.log"
    web = signup.start(
        web_log, bound_to(signup.container["command"], f"127.0.0.1:{port}")
    )
    relay = mailer.start(mailer_log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: web.poll() is not None or http(f"{base}/readyz")[0] == 200,
            STARTUP_TIMEOUT,
        )
        assert http(f"{base}/healthz")[0] == 200, web_log.read_text()
        assert http(f"{base}/readyz")[0] == 200, web_log.read_text()
        body = {"email": "ada@example.com"}
        assert http(f"{base}/signup", body)[0] == 201, web_log.read_text()
        assert smtp.wait_for(1, DELIVERY_TIMEOUT), mailer_log.read_text()
        assert smtp.messages[0]["To"] == "ada@example.com"
    finally:
        web_status, mailer_status = stop(web), stop(relay)

    assert web_status == 0, web_log.read_text()
    assert mailer_status == 0, mailer_log.read_text()
    assert "[ERROR]" not in web_log.read_text()  # gunicorn's own complaints
    assert "Read-only file system" not in web_log.read_text() + mailer_log.read_text()
