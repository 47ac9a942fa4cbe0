"""The signup service under gunicorn, as compose runs it, on a free local port."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import ROOT
from tests.support.deployfiles import compose_config
from tests.support.processes import free_port, wait_until
from tests.support.procfile import with_venv_path

STARTUP_TIMEOUT = 120.0  # seconds for gunicorn to answer; other tests share the CPUs
SHUTDOWN_TIMEOUT = 60.0  # seconds for gunicorn's graceful stop after SIGTERM


def bound_to(command: list[str], address: str) -> list[str]:
    """Return ``command`` with its ``--bind`` value replaced by ``address``."""
    index = command.index("--bind")
    return [*command[: index + 1], address, *command[index + 2 :]]


def http(url: str, payload: dict[str, Any] | None = None) -> tuple[int | None, bytes]:
    """Return (status, body) of a GET, or of a JSON POST; (None, b"") if unreachable."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()
    except OSError:
        return None, b""


def compose_signup(env: dict[str, str], log: Path) -> Gunicorn:
    """Start the signup service with compose's own command and wait for it."""
    command = compose_config({})["services"]["signup"]["command"]
    web = Gunicorn(command, with_venv_path(env), ROOT, log)
    try:
        web.wait_ready()
    except BaseException:
        web.kill()  # a master that never answered is not left running
        raise
    return web


class Gunicorn:
    """A gunicorn master running ``command`` in ``cwd``, logging to a file."""

    def __init__(
        self, command: list[str], env: dict[str, str], cwd: Path, log: Path
    ) -> None:
        self.port = free_port()
        self.log_path = log
        with log.open("wb") as output:
            # A file, not a pipe: a full pipe would block gunicorn.
            self.process = subprocess.Popen(
                bound_to(command, f"127.0.0.1:{self.port}"),
                cwd=cwd,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.base = f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Return what gunicorn and the app logged so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Wait until /healthz answers; fail with the log if it never does."""
        wait_until(
            lambda: (
                self.process.poll() is not None
                or http(f"{self.base}/healthz")[0] == 200
            ),
            STARTUP_TIMEOUT,
        )
        assert self.process.poll() is None, self.log()
        assert http(f"{self.base}/healthz")[0] == 200, self.log()

    def worker_pids(self) -> set[int]:
        """Return the pids of the master's live children (its workers)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            state, ppid = text[text.rindex(")") + 2 :].split()[:2]
            if int(ppid) == self.process.pid and state != "Z":
                found.add(int(stat.parent.name))
        return found

    def stop(self) -> int:
        """SIGTERM the master and return its exit status."""
        self.process.terminate()
        return self.process.wait(timeout=SHUTDOWN_TIMEOUT)

    def kill(self) -> None:
        """Make sure the master is gone (test teardown)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=SHUTDOWN_TIMEOUT)
