"""The mailer commits outcomes without waiting for the WAL flush; what that costs.

A mailer crash loses none of them (the server has them). A PostgreSQL crash
can lose the last fraction of a second of them; those messages are then sent
again, never lost (tests/mailer/test_postgres_crash.py). The signup's commit
stays synchronous: a 201 is on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event, text

from mailer_service.app import create_app as create_mailer_app
from mailer_service.app import db as mailer_db
from mailer_service.sql import load_queries
from mailer_service.store import OutboxStore
from signup_service.database import db as signup_db
from tests.support.databases import url_string
from tests.support.outbox import outbox_rows, seed_outbox

CRASH_WINDOW = 1.0  # seconds of outcomes a PostgreSQL crash may lose (~0.6 s)
CONCURRENCY = 4  # SMTP connections of the mailer under test
# The two ways a statement's commit can be made to wait for the WAL flush.
SYNCHRONOUS_ON = "SET synchronous_commit = on"
SYNCHRONOUS_RESET = "RESET synchronous_commit"
TRANSACTION_LOCAL_ON = "set_config('synchronous_commit', 'on', true)"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_only_the_mailer_commits_asynchronously(database_url, make_app):
    mailer = create_mailer_app({"DATABASE_URL": url_string(database_url)})
    signup = make_app()
    show = text("SHOW synchronous_commit")
    with mailer.app_context():
        with mailer_db.engine.connect() as connection:
            assert connection.execute(show).scalar() == "off"
        mailer_db.engine.dispose()
    with signup.app_context(), signup_db.engine.connect() as connection:
        assert connection.execute(show).scalar() == "on"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_hold_marker_alone_commits_synchronously(database_url, engine):
    """mark_started waits for the WAL flush, then the session is async again."""
    [row_id] = seed_outbox(engine, 1)
    mailer = create_mailer_app({"DATABASE_URL": url_string(database_url)})
    with mailer.app_context():
        mark_started = load_queries("delivery_postgresql")["mark_started"]
        marker = str(mark_started.compile(dialect=mailer_db.engine.dialect))
        with mailer_db.engine.connect() as connection:
            store = OutboxStore(connection, "w", 30)
            store.claim_due_rows(1)
            with recording(mailer_db.engine) as sent:
                assert store.mark_started(row_id)
            after = connection.execute(text("SHOW synchronous_commit")).scalar()
        mailer_db.engine.dispose()

    # Either the session's setting is on for the marker's statement alone ...
    wrapped = sent == [SYNCHRONOUS_ON, marker, SYNCHRONOUS_RESET]
    # ... or the statement turns it on for its own transaction only.
    local = sent == [marker] and TRANSACTION_LOCAL_ON in marker
    assert wrapped or local, sent
    assert after == "off"
    assert outbox_rows(engine)[0]["send_started_at"] is not None


@contextmanager
def recording(engine: Engine) -> Iterator[list[str]]:
    """Collect the statements ``engine`` sends inside the block, as sent."""
    statements: list[str] = []

    def record(_conn, _cursor, statement: str, *_args: object) -> None:
        """Keep the statement's text (its parameters are left out)."""
        statements.append(statement.strip())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
