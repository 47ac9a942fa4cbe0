"""The embedded demo on SQLite: two gunicorn workers and the mailer share one file.

WAL and the busy timeout must make concurrent writers wait for the lock instead
of failing with "database is locked". This drives the Procfile's own commands.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import URL

from tests.support import ROOT
from tests.support.databases import SqliteTemplate
from tests.support.outbox import outbox_columns
from tests.support.processes import child_env, free_port
from tests.support.procfile import (
    START_TIMEOUT,
    answers,
    post_signup,
    procfile,
    start_shell,
    stop_all,
    wait_or_fail,
    with_venv_path,
)
from tests.support.smtp import SmtpServer

COLUMNS = ("message_id", "status", "attempts")  # what the checks read
SIGNUPS = 40  # concurrent POST /signup requests
DELIVERY_TIMEOUT = 180.0  # seconds for the mailer to send every signup's mail

pytestmark = pytest.mark.slow


@pytest.fixture
def sqlite_url(sqlite_template: SqliteTemplate, tmp_path: Path) -> URL:
    """A migrated SQLite file of this test's own."""
    return sqlite_template.create_database(tmp_path)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], Path]]:
    """Start Procfile processes in tmp_path; SIGTERM them after, SIGKILL if stuck."""
    started: list[subprocess.Popen[bytes]] = []
    # The web command reads gunicorn's config from its working directory.
    (tmp_path / "gunicorn.conf.py").symlink_to(ROOT / "gunicorn.conf.py")

    def run(name: str, env: dict[str, str]) -> Path:
        """Start the Procfile's ``name`` process; return its log file."""
        log = tmp_path / f"{name}.log"
        started.append(
            start_shell(procfile()[name], with_venv_path(env), tmp_path, log)
        )
        return log

    yield run
    assert stop_all(started) == [], "ignored SIGTERM and had to be killed"


def test_sqlite_demo_concurrent_signups_never_lock(
    sqlite_url: URL, smtp: SmtpServer, spawn
):
    """Dozens of concurrent signups all commit, and each mail goes out once."""
    port = free_port()
    database = sqlite_url.render_as_string(hide_password=False)
    web_log = spawn(
        "web",
        # One client sends every signup: lift the per-address rate limit.
        child_env(
            DATABASE_URL=database,
            SIGNUP_PORT=str(port),
            SIGNUP_RATE_LIMIT="1000/minute",
        ),
    )
    mailer_log = spawn(
        "mailer",
        child_env(
            DATABASE_URL=database,
            MAIL_PORT=str(smtp.port),
            MAILER_POLL_INTERVAL="0.2",
            MAILER_METRICS_PORT=str(free_port()),
        ),
    )
    wait_or_fail(
        lambda: answers(f"http://127.0.0.1:{port}/readyz"),
        START_TIMEOUT,
        f"gunicorn on :{port}",
        web_log.read_text,
    )
    # Release every request at once, so the two workers and the mailer contend.
    start = threading.Barrier(SIGNUPS)

    def sign_up(n: int) -> tuple[int, dict]:
        """Wait for the others, then POST one signup."""
        start.wait()
        return post_signup(port, f"user{n}@example.com")

    with ThreadPoolExecutor(max_workers=SIGNUPS) as pool:
        results = list(pool.map(sign_up, range(SIGNUPS)))

    assert [(status, body) for status, body in results if status != 201] == []
    assert len({body["id"] for _, body in results}) == SIGNUPS
    wait_or_fail(
        lambda: all(row[1] == "sent" for row in outbox_columns(sqlite_url, *COLUMNS)),
        DELIVERY_TIMEOUT,
        "every outbox row sent",
        mailer_log.read_text,
    )
    rows = outbox_columns(sqlite_url, *COLUMNS)
    assert len(rows) == SIGNUPS
    assert {attempts for _, _, attempts in rows} == {1}
    # Each row's Message-ID reached the SMTP server exactly once.
    assert smtp.message_ids() == {message_id: 1 for message_id, _, _ in rows}
    for log in (web_log, mailer_log):
        output = log.read_text()
        assert "database is locked" not in output
        assert "Traceback" not in output
