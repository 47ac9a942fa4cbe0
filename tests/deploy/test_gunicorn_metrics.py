"""Under gunicorn, /metrics adds up every worker's counts, from a clean start.

The compose signup command runs for real with its two workers and
gunicorn.conf.py, from a copy of the image's WORKDIR.
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support import ROOT
from tests.support.databases import url_string
from tests.support.deployfiles import container_env, dockerfile_cmd, service_env
from tests.support.gunicorn import Gunicorn, http
from tests.support.metrics import sample
from tests.support.processes import wait_until
from tests.support.procfile import procfile
from tests.support.promtool import check_metrics

pytestmark = pytest.mark.slow

SIGNUPS = 6
CONFIG = ["-c", "gunicorn.conf.py"]


def stale_counts(folder: Path, count: int) -> None:
    """Leave a previous run's files in ``folder``: ``count`` signups, long gone."""
    probe = (
        "from signup_service import metrics; "
        f"metrics.SIGNUPS.inc({count}); "
        "metrics.REQUESTS.labels('signup.signup', '201').inc(" + str(count) + ")"
    )
    subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        check=True,
        timeout=120,
    )
    assert list(folder.glob("counter_*.db"))


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    """A PROMETHEUS_MULTIPROC_DIR holding a previous run's counts."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    stale_counts(folder, 1000)
    return folder


@pytest.fixture
def gunicorn(
    config, image_workdir, sqlite_template, tmp_path, metrics_dir
) -> Iterator[Gunicorn]:
    """The compose signup command (2 workers) on a migrated SQLite file."""
    database = sqlite_template.create_database(tmp_path)
    env = container_env(
        **{
            **service_env(config, "signup"),
            "DATABASE_URL": url_string(database),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
    )
    server = Gunicorn(
        config["services"]["signup"]["command"],
        env,
        image_workdir,
        tmp_path / "gunicorn.log",
    )
    server.wait_ready()
    yield server
    server.kill()


def test_every_gunicorn_command_uses_the_config_file(config):
    """make run (Procfile), the image's CMD and compose all pass gunicorn.conf.py."""
    # The Procfile's line may set variables for the command first (NAME=value).
    web = [word for word in procfile()["web"].split() if "=" not in word.split("-")[0]]
    compose = config["services"]["signup"]["command"]

    for command in (web, dockerfile_cmd(), compose):
        assert command[0] == "gunicorn"
        assert command[1:3] == CONFIG, command
    assert (ROOT / "gunicorn.conf.py").is_file()


def test_gunicorn_adds_up_every_workers_counts_and_forgets_the_last_run(
    gunicorn, metrics_dir
):
    for n in range(SIGNUPS):
        assert http(f"{gunicorn.base}/signup", {"email": f"u{n}@example.com"})[0] == 201
    # Kill both workers one after the other: what they counted lives in their
    # files, so every sample below comes from processes that are gone.
    for pid in sorted(gunicorn.worker_pids()):
        # A live gauge of this worker: child_exit must remove it.
        (metrics_dir / f"gauge_livesum_{pid}.db").write_bytes(b"")
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda p=pid: p not in gunicorn.worker_pids(), 30)
        assert wait_until(lambda: len(gunicorn.worker_pids()) == 2, 60)
        assert wait_until(
            lambda p=pid: not (metrics_dir / f"gauge_livesum_{p}.db").exists(), 30
        ), gunicorn.log()
    gunicorn.wait_ready()

    status, body = http(f"{gunicorn.base}/metrics")

    assert status == 200
    # The previous run's 1000 are gone: gunicorn.conf.py emptied the directory.
    assert sample(body, "signup_users_created_total") == SIGNUPS
    assert (
        sample(
            body, "signup_http_requests_total", endpoint="signup.signup", status="201"
        )
        == SIGNUPS
    )
    assert (
        sample(
            body, "signup_http_request_duration_seconds_count", endpoint="signup.signup"
        )
        == SIGNUPS
    )
    assert sample(body, "outbox_rows", status="pending") == SIGNUPS
    lint = check_metrics(body)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert gunicorn.stop() == 0


def test_child_exit_marks_the_worker_dead(tmp_path, monkeypatch):
    """The hook removes exactly the exited worker's live gauge files."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    for name in ("gauge_livesum_41.db", "gauge_liveall_41.db", "gauge_livesum_42.db"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "counter_41.db").write_bytes(b"")

    hooks["child_exit"](None, SimpleNamespace(pid=41))

    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == ["counter_41.db", "gauge_livesum_42.db"]


def test_on_starting_empties_a_configured_directory_and_keeps_it(tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    hooks["on_starting"](None)
    hooks["on_exit"](None)

    assert folder.is_dir() and list(folder.iterdir()) == []


def test_unset_directory_gets_a_fresh_one_removed_at_exit(monkeypatch):
    # Empty counts as unset; setenv (unlike delenv of an absent name) makes
    # monkeypatch undo what the config file writes into os.environ.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

    hooks["on_starting"](None)
    assert folder.is_dir()
    hooks["on_exit"](None)

    assert not folder.exists()
