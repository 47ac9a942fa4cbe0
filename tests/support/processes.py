"""Real child processes for crash and signal tests, mailers among them.

Also what a process is connected to: :func:`tcp_connections` reads it from
/proc, e.g. to tell a direct PostgreSQL connection from one through a pooler.
"""

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
_TCP_ESTABLISHED = "01"  # the state column of /proc/net/tcp


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


def tcp_connections(pid: int) -> set[tuple[int, int]]:
    """Return (local port, remote port) of each TCP connection ``pid`` has open.

    Read from /proc: the process's socket descriptors, looked up in the
    kernel's TCP tables (IPv4 and IPv6) of its network namespace.
    """
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode in inodes and state == _TCP_ESTABLISHED:
                found.add((_hex_port(local), _hex_port(remote)))
    return found


def _hex_port(address: str) -> int:
    """Return the port of a /proc/net/tcp address such as ``0100007F:1538``."""
    return int(address.rpartition(":")[2], 16)


class LoggedProcess:
    """A child process in a session of its own, logging to a file."""

    def __init__(
        self, command: list[str], env: dict[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
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


class MailerProcess(LoggedProcess):
    """``python -m mailer_service`` as a child process, logging to a file."""

    def __init__(self, log_path: Path, **env: str) -> None:
        super().__init__(
            [sys.executable, "-m", "mailer_service"], child_env(**env), ROOT, log_path
        )
