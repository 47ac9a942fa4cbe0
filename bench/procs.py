"""Start, wait for and stop the subprocesses: gunicorn and ``python -m mailer_service``.

Every child starts in its own session, so its process group holds it and all
its children (gunicorn's workers): one ``killpg`` reaches them all.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The same serving settings for all three patterns: 2 gthread workers of 4
# threads each, i.e. 8 requests in progress at most. The seed's sync pattern
# needs threads to serve more than one request per worker at a time.
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
GUNICORN_SETTINGS = f"--workers {GUNICORN_WORKERS} --threads {GUNICORN_THREADS}"

READY_TIMEOUT = 60.0  # seconds for gunicorn to answer; the machine is shared
STOP_TIMEOUT = 30.0  # seconds a SIGTERM gets before SIGKILL
POLL_SECONDS = 0.1


class Child:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path):
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pgid(self) -> int:
        """Return the process group id (the child leads its own session)."""
        return self.process.pid

    def kill_group(self) -> None:
        """SIGKILL the child and every process in its group, and reap the child."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone: nothing to kill
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever outlives STOP_TIMEOUT."""
        if self.process.poll() is None:
            try:
                os.killpg(self.pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Workers or stray threads' processes may outlive the leader.
        self.kill_group()

    def tail(self, lines: int = 20) -> str:
        """Return the last lines of the child's log, for error messages."""
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def start_gunicorn(
    app: str,
    port: int,
    env: Mapping[str, str],
    log: Path,
    workers: int = GUNICORN_WORKERS,
) -> Child:
    """Serve ``app`` (a gunicorn app spec) on 127.0.0.1:``port`` and wait for it."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(GUNICORN_THREADS),
        "--log-level",
        "warning",
        app,
    ]
    child = Child(f"gunicorn {app}", argv, env, log)
    wait_http(child, port, workers)
    return child


def start_mailer(env: Mapping[str, str], log: Path) -> Child:
    """Start one ``python -m mailer_service`` process."""
    return Child("mailer", [sys.executable, "-m", "mailer_service"], env, log)


def wait_http(child: Child, port: int, workers: int = GUNICORN_WORKERS) -> None:
    """Wait until every worker behind ``port`` answers HTTP (any status will do)."""
    deadline = time.monotonic() + READY_TIMEOUT
    answered = 0
    # The workers share the socket; several answers make it likely all booted.
    while answered < 2 * workers:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} did not answer:\n{child.tail()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            answered += 1
        except OSError:
            time.sleep(POLL_SECONDS)
        finally:
            connection.close()
