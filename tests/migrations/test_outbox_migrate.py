"""`outbox migrate` in an app's own database: it adds the outbox, touches nothing else.

The app here has its own alembic history (``alembic_version`` at a revision
of its own) and its own ``users`` table, shaped unlike the signup service's.
The real CLI runs on it, as an adopter would run it.
"""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import URL, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from outbox_contract.schema import OUTBOX_VERSION_TABLE, OutboxBase
from tests.migrations.test_migrations import drift
from tests.support.databases import url_string

APP_SCHEMA = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('app_rev_42')",
    "CREATE TABLE users (uid INTEGER PRIMARY KEY, handle TEXT NOT NULL)",
    "INSERT INTO users VALUES (1, 'ada')",
)


def outbox_cli(url: URL, *args: str) -> subprocess.CompletedProcess:
    """Run the ``outbox`` command on ``url`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "mailer_service.admin", *args],
        env={"DATABASE_URL": url_string(url), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(url: URL) -> dict:
    """Return the app's own state: its alembic revision, users' columns and rows."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {
                "revision": connection.scalar(text("SELECT * FROM alembic_version")),
                "columns": [
                    c["name"] for c in inspect(connection).get_columns("users")
                ],
                "rows": connection.execute(text("SELECT * FROM users")).all(),
                "tables": set(inspect(connection).get_table_names()),
            }
    finally:
        engine.dispose()


def test_outbox_migrate_adds_its_tables_beside_an_apps_own_history(empty_url):
    engine = create_engine(empty_url, poolclass=NullPool)
    with engine.begin() as connection:
        for statement in APP_SCHEMA:
            connection.execute(text(statement))
    engine.dispose()
    before = snapshot(empty_url)

    first = outbox_cli(empty_url, "migrate")
    again = outbox_cli(empty_url, "migrate")  # an up-to-date database: no change

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert "outbox tables at revision outbox_0004" in again.stdout
    after = snapshot(empty_url)
    assert after["revision"] == before["revision"] == "app_rev_42"
    assert after["columns"] == before["columns"] == ["uid", "handle"]
    assert after["rows"] == before["rows"]
    assert after["tables"] - before["tables"] == {
        "outbox",
        "outbox_attachments",
        "outbox_attempts",
        "outbox_send_rate",
        "outbox_suppressions",
        "outbox_waiters",
        OUTBOX_VERSION_TABLE,
    }
    assert drift(empty_url, OutboxBase.metadata) == []


def test_outbox_migrate_fails_clearly_without_a_database():
    url = URL.create("postgresql+psycopg", host="127.0.0.1", port=1, database="x")

    result = outbox_cli(url, "migrate")

    assert result.returncode == 1
    assert "database error" in result.stderr
    assert "Traceback" not in result.stderr
