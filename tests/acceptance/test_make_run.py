"""`make run` as a newcomer runs it: sign up, find the mail in var/mail, Ctrl-C.

The real Makefile recipe runs from a scratch directory holding the files the
recipe reads (Procfile, pyproject.toml, migrations/), with the repository's venv
and no DATABASE_URL or MAIL_* set: the embedded SQLite demo, only on free ports.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import URL

from tests.support import ROOT, VENV_BIN
from tests.support.metrics import sample
from tests.support.outbox import outbox_columns
from tests.support.processes import child_env, free_port
from tests.support.procfile import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    answers,
    live_processes_in,
    post_signup,
    procfile,
    start_shell,
    wait_or_fail,
)
from tests.support.smtp import SmtpServer

DELIVERY_TIMEOUT = 120.0  # seconds from the signup to the mail file and `sent`
COLUMNS = ("id", "status", "attempts", "message_id")  # what the checks read
# What the recipe reads.
CHECKOUT = ("Procfile", "pyproject.toml", "migrations", "gunicorn.conf.py")
PROCESSES = {"web", "smtp", "mailer", "status"}
STARTED = re.compile(r"system\s+\| (\w+)\.1 started \(pid=(\d+)\)")

pytestmark = pytest.mark.slow


class MakeRun:
    """One ``make run`` in its own process group, with its combined log."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.log = workdir.parent / "make-run.log"
        venv = VENV_BIN.parent
        # -o: never rebuild the shared venv from here, even if pyproject.toml is
        # newer than its stamp; the recipe itself runs unchanged. exec: make leads
        # the group, as in a terminal, with no shell between it and Ctrl-C.
        makefile, stamp = ROOT / "Makefile", venv / ".installed"
        command = "exec " + shlex.join(
            ["make", "-f", str(makefile), "-o", str(stamp), f"VENV={venv}", "run"]
        )
        self.process = start_shell(command, env, workdir, self.log)

    @property
    def web_port(self) -> int:
        """The port gunicorn listens on."""
        return int(self.env["SIGNUP_PORT"])

    def url(self, port_variable: str, path: str) -> str:
        """Return the local URL of ``path`` on the port named by ``port_variable``."""
        return f"http://127.0.0.1:{self.env[port_variable]}{path}"

    def output(self) -> str:
        """Return everything make, honcho and the processes printed so far."""
        return self.log.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        """Return honcho's processes by name: the pid (and group) of each."""
        return {name: int(pid) for name, pid in STARTED.findall(self.output())}

    def groups(self) -> list[int]:
        """Return make's process group and that of every honcho process."""
        return [self.process.pid, *self.children().values()]

    def wait_started(self) -> None:
        """Wait until web answers, the sink listens, the mailer polls, status serves."""

        def started() -> bool:
            """Tell whether all three are up; fail at once if make quit."""
            assert self.process.poll() is None, f"make run quit:\n{self.output()}"
            return (
                answers(f"http://127.0.0.1:{self.web_port}/readyz")
                and listening(int(self.env["SMTP_SINK_PORT"]))
                and "polling every" in self.output()
                and answers(self.url("STATUS_PORT", "/"))
            )

        wait_or_fail(started, START_TIMEOUT, "all four processes", self.output)

    def interrupt(self) -> str:
        """Press Ctrl-C: SIGINT to the foreground group (make and honcho); wait."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"make run ignored Ctrl-C; output:\n{self.output()}")
        return self.output()

    def kill(self) -> None:
        """SIGKILL whatever is left, then reap make."""
        for group in self.groups():
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch directory laid out like a checkout, for the recipe to run in."""
    folder = tmp_path / "checkout"
    folder.mkdir()
    for name in CHECKOUT:
        (folder / name).symlink_to(ROOT / name)
    return folder


@pytest.fixture
def newcomer_env() -> dict[str, str]:
    """No app settings, no venv on PATH (the Makefile must add it), free ports."""
    env = child_env()
    env["PATH"] = os.pathsep.join(
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if Path(entry or ".").resolve() != VENV_BIN.resolve()
    )
    env["SIGNUP_PORT"] = str(free_port())
    env["STATUS_PORT"] = str(free_port())
    env["MAILER_METRICS_PORT"] = str(free_port())
    env["SMTP_SINK_PORT"] = env["MAIL_PORT"] = str(free_port())
    return env


@pytest.fixture
def start_make_run(
    workdir: Path, newcomer_env: dict[str, str]
) -> Iterator[Callable[..., MakeRun]]:
    """Start ``make run`` with extra ``env``; kill whatever survives the test."""
    runs: list[MakeRun] = []

    def start(**env: str) -> MakeRun:
        """Start make run in ``workdir`` with ``env`` on top of a newcomer's."""
        runs.append(MakeRun(workdir, {**newcomer_env, **env}))
        runs[-1].wait_started()
        return runs[-1]

    yield start
    for run in runs:
        run.kill()


def listening(port: int) -> bool:
    """Tell whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


def sign_up_and_wait_sent(run: MakeRun, database: URL) -> str:
    """Sign Ada up, wait until her outbox row is sent once; return its Message-ID."""
    status, body = post_signup(run.web_port, "Ada@Example.com")

    assert (status, body["email"]) == (201, "ada@example.com"), body
    wait_or_fail(
        lambda: [row[1] for row in outbox_columns(database, *COLUMNS)] == ["sent"],
        DELIVERY_TIMEOUT,
        "the outbox row to be sent",
        run.output,
    )
    [(row_id, _, attempts, message_id)] = outbox_columns(database, *COLUMNS)
    assert (row_id, attempts) == (body["id"], 1)
    return message_id


def assert_stopped_cleanly(run: MakeRun, output: str) -> None:
    """Every process stopped after Ctrl-C, on its own terms, and none is left."""
    assert set(run.children()) == PROCESSES, output
    assert live_processes_in(run.groups()) == []
    assert "SIGINT received" in output
    for name in PROCESSES:
        assert f"{name}.1 stopped" in output
    # gunicorn and the mailer shut down gracefully, not by honcho's SIGKILL.
    assert "sending SIGKILL" not in output
    assert "Shutting down: Master" in output
    assert re.search(r"mailer\.1 +\| .* mailer \S+ stopped", output), output
    assert re.search(r"status\.1 +\| .* status page stopped", output), output
    # make stops because of the interrupt (honcho exits 130), not a crash.
    assert re.search(r"\[.*run\] (Error 130|Interrupt)$", output, re.M), output
    assert run.process.returncode in (2, -signal.SIGINT)
    assert "Traceback" not in output
    assert "database is locked" not in output


def assert_operable(run: MakeRun) -> None:
    """Both /metrics answer with the delivery counted, and the status page too."""
    web = scrape(run.url("SIGNUP_PORT", "/metrics"))
    assert sample(web, "signup_users_created_total") == 1
    assert sample(web, "outbox_rows", status="sent") == 1
    mailer = scrape(run.url("MAILER_METRICS_PORT", "/metrics"))
    assert sample(mailer, "mailer_messages_total", result="sent") == 1
    assert scrape(run.url("MAILER_METRICS_PORT", "/healthz")).startswith(b"{")
    page = scrape(run.url("STATUS_PORT", "/")).decode()
    assert 'data-status="sent">' in page and 'id="failures-none"' in page
    lookup = scrape(run.url("STATUS_PORT", "/?recipient=ada@example.com")).decode()
    assert 'id="lookup-results"' in lookup


def scrape(url: str) -> bytes:
    """GET ``url`` as curl would and return the body; fail unless 200."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return response.read()


def test_procfile_runs_web_smtp_sink_mailer_and_status_page():
    """The Procfile names the four processes make run promises."""
    commands = procfile()
    assert set(commands) == PROCESSES
    assert "signup_service:create_app()" in commands["web"]
    assert " gunicorn -c gunicorn.conf.py " in f" {commands['web']}"
    assert commands["mailer"].endswith(" python -m mailer_service")
    assert "MAILER_METRICS_PORT=${MAILER_METRICS_PORT:-9101}" in commands["mailer"]
    assert commands["status"] == "outbox serve --port ${STATUS_PORT:-8001}"
    assert "aiosmtpd.handlers.Mailbox var/mail" in commands["smtp"]


def test_make_run_signup_mail_lands_in_maildir_and_ctrl_c_stops_all(
    start_make_run: Callable[..., MakeRun],
):
    """Sign up, see the welcome mail in var/mail/new and `sent`, then Ctrl-C."""
    run = start_make_run()
    var = run.workdir / "var"

    sqlite_url = URL.create("sqlite", database=str(var / "outbox.db"))
    message_id = sign_up_and_wait_sent(run, sqlite_url)

    [mail_file] = (var / "mail" / "new").iterdir()
    mail = message_from_bytes(mail_file.read_bytes(), policy=policy.default)
    assert mail["To"] == "ada@example.com"
    assert mail["X-RcptTo"] == "ada@example.com"  # the envelope, as the sink saw it
    assert mail["Subject"] == "Welcome aboard!"
    assert mail["Message-ID"] == message_id
    assert_operable(run)
    assert_stopped_cleanly(run, run.interrupt())


def test_make_run_env_switches_to_postgresql_and_real_smtp(
    start_make_run: Callable[..., MakeRun], pg_url: URL
):
    """DATABASE_URL and MAIL_* move both services off SQLite and the local sink."""
    with SmtpServer() as smtp:
        run = start_make_run(
            DATABASE_URL=pg_url.render_as_string(hide_password=False),
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(smtp.port),
        )
        message_id = sign_up_and_wait_sent(run, pg_url)
        output = run.interrupt()

    assert smtp.message_ids() == {message_id: 1}
    # The sink ran, harmlessly, and received nothing; no SQLite file appeared.
    assert list((run.workdir / "var" / "mail" / "new").iterdir()) == []
    assert not (run.workdir / "var" / "outbox.db").exists()
    assert_stopped_cleanly(run, output)
