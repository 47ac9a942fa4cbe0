"""Debian's PgBouncer in transaction pooling mode, in front of the test server.

Started as a real process (as the ``postgres`` user when run as root, since
PgBouncer refuses root), with trust authentication, and gone after the block.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL

from tests.support.optional import skip_or_fail
from tests.support.processes import free_port, wait_until

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
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        skip_or_fail("Debian's pgbouncer is not installed (apt-get install pgbouncer)")
    folder = Path(tempfile.mkdtemp(prefix="outbox-pgbouncer-"))
    folder.chmod(0o755)
    listen = free_port()
    (folder / "users.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        CONFIG.format(host=server.host, port=server.port, listen=listen, folder=folder)
    )
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(folder, "postgres")
    process = subprocess.Popen(
        [*as_owner, binary, str(ini)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_until(lambda: _accepts(listen), 30):
            raise RuntimeError(f"pgbouncer did not start: {_log(folder)}")
        yield server.set(port=listen)
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
    """Return PgBouncer's log, for a failure message."""
    path = folder / "pgbouncer.log"
    return path.read_text() if path.exists() else "(no log)"
