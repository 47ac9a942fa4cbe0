"""Debian's PgBouncer in transaction pooling mode, in front of the test server.

Started as a real process (as the ``postgres`` user when run as root, since
PgBouncer refuses root), and gone after the block. :func:`pgbouncer` runs a
config of its own with trust authentication; :func:`repo_pgbouncer` runs the
repository's deploy/pgbouncer/pgbouncer.ini, as compose's pgbouncer profile
mounts it, with only what must differ on this machine rewritten.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL

from tests.support import ROOT
from tests.support.optional import skip_or_fail
from tests.support.processes import free_port, wait_until

REPO_INI = ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"
START_TIMEOUT = 30.0  # seconds for PgBouncer to listen

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


@contextmanager
def pgbouncer(server: URL) -> Iterator[URL]:
    """Run PgBouncer before ``server``; yield the same URL, through it."""

    def config(folder: Path, listen: int) -> str:
        """Return the test's own config, trusting every client."""
        return CONFIG.format(
            host=server.host, port=server.port, listen=listen, folder=folder
        )

    users = f'"{server.username or "postgres"}" ""\n'
    with _running(config, users) as listen:
        yield server.set(port=listen)


@contextmanager
def repo_pgbouncer(server: URL, users: str) -> Iterator[int]:
    """Run deploy/pgbouncer/pgbouncer.ini before ``server``; yield its port.

    ``users`` is the user list the file's ``auth_file`` names. The file runs
    as written but for where it listens (a free port on 127.0.0.1, not every
    interface), where the server is, and the user list's path.
    """
    text = REPO_INI.read_text()
    target = ini_settings(text)[("databases", "*")]

    def config(folder: Path, listen: int) -> str:
        """Return the repository's file with this machine's addresses and paths."""
        return rewrite_ini(
            text,
            {
                ("databases", "*"): connect_string(
                    target, host=str(server.host), port=str(server.port)
                ),
                ("pgbouncer", "listen_addr"): "127.0.0.1",
                ("pgbouncer", "listen_port"): str(listen),
                ("pgbouncer", "auth_file"): str(folder / "users.txt"),
            },
        )

    with _running(config, users) as listen:
        yield listen


def ini_settings(text: str) -> dict[tuple[str, str], str]:
    """Return every ``key = value`` of a pgbouncer.ini by (section, key)."""
    settings: dict[tuple[str, str], str] = {}
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            continue
        key, _, value = stripped.partition("=")
        settings[(section, key.strip())] = value.strip()
    return settings


def rewrite_ini(text: str, changes: Mapping[tuple[str, str], str]) -> str:
    """Return ``text`` with the values of ``changes`` replaced, all else as written.

    Raises KeyError for a key the file does not set: a rewrite never adds a
    setting, so the file under test stays the one that runs.
    """
    lines, done, section = [], set(), ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
        elif stripped and stripped[0] not in ";#":
            key = (section, stripped.partition("=")[0].strip())
            if key in changes:
                line = f"{key[1]} = {changes[key]}"
                done.add(key)
        lines.append(line)
    missing = set(changes) - done
    if missing:
        raise KeyError(f"not set in the file: {sorted(missing)}")
    return "\n".join(lines) + "\n"


def connect_string(value: str, **changes: str) -> str:
    """Return a ``[databases]`` entry (``host=... port=...``) with ``changes``."""
    pairs = dict(item.split("=", 1) for item in value.split())
    return " ".join(f"{k}={v}" for k, v in {**pairs, **changes}.items())


@contextmanager
def _running(config: Callable[[Path, int], str], users: str) -> Iterator[int]:
    """Start PgBouncer on ``config(folder, port)``; yield the port it listens on."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        skip_or_fail("Debian's pgbouncer is not installed (apt-get install pgbouncer)")
    folder = Path(tempfile.mkdtemp(prefix="outbox-pgbouncer-"))
    folder.chmod(0o755)
    listen = free_port()
    (folder / "users.txt").write_text(users)
    ini = folder / "pgbouncer.ini"
    ini.write_text(config(folder, listen))
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(folder, "postgres")
    # A file, not a pipe: without a logfile setting PgBouncer logs to stderr.
    with (folder / "stderr.log").open("wb") as output:
        process = subprocess.Popen(
            [*as_owner, binary, str(ini)], stdout=output, stderr=output
        )
    try:
        if not wait_until(lambda: _accepts(listen), START_TIMEOUT):
            raise RuntimeError(f"pgbouncer did not start: {_log(folder)}")
        yield listen
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def _accepts(port: int) -> bool:
    """Tell whether something listens on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _log(folder: Path) -> str:
    """Return what PgBouncer logged, for a failure message."""
    logs = [folder / "pgbouncer.log", folder / "stderr.log"]
    return "\n".join(p.read_text() for p in logs if p.exists()) or "(no log)"
