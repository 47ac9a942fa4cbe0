"""Real mailer processes for crash and signal tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support import ROOT

# Variables of the developer's shell that must not leak into a child's config.
_CONFIG_PREFIXES = (
    "DATABASE_URL",
    "MAIL_",
    "MAILER_",
    "SIGNUP_",
    "LOG_FORMAT",
    "PROMETHEUS_MULTIPROC_DIR",
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**env: str) -> dict[str, str]:
    """Return this process's environment without config variables, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)}
    return {**base, **env}


def wait_until(predicate: Callable[[], object], timeout: float, interval=0.05) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class MailerProcess:
    """``python -m mailer_service`` as a child process, logging to a file."""

    def __init__(self, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailer_service"],
                cwd=ROOT,
                env=child_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        """Return what the process has logged so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Tell whether the process is still running."""
        return self.proc.poll() is None

    def terminate(self, timeout: float = 60) -> int:
        """Send SIGTERM and return the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Send SIGKILL, as the OOM killer or a power cut would."""
        self.proc.kill()
        self.proc.wait(10)

    def stop_quietly(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)
