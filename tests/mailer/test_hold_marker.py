"""The hold marker commits synchronously, in one statement, with no session state.

Behind PgBouncer's transaction pooling a session-level ``SET`` would leak to
other clients and a ``RESET`` would reach another server connection; the
marker's statement sets ``synchronous_commit`` for its own transaction only.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from mailer_service.sql import load_queries
from mailer_service.store import OutboxStore
from tests.support.outbox import seed_outbox

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@POSTGRES_ONLY
def test_mark_started_is_one_statement_that_commits_synchronously(engine):
    seed_outbox(engine, 1)
    statements: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append(statement),
    )
    with engine.connect() as connection:
        store = OutboxStore(connection, "w", 60)
        store.connection.exec_driver_sql("SET synchronous_commit = off")  # its own
        [row] = store.claim_due_rows(1)
        statements.clear()

        assert store.mark_started(row.id) is True
        sent = list(statements)
        after = store.connection.exec_driver_sql("SHOW synchronous_commit").scalar()

    [marker] = sent  # no SET before it, no RESET after it
    assert "set_config('synchronous_commit', 'on', true)" in marker
    assert after == "off"  # nothing leaked into the session


@POSTGRES_ONLY
def test_the_marker_turns_synchronous_commit_on_inside_its_transaction(engine):
    """What the statement does to its own transaction, seen from inside it.

    (It sets it only when it writes the marker: the join reads the setting's
    row only for a row this worker holds, and a commit with nothing written
    has nothing to make durable.)
    """
    seed_outbox(engine, 1)
    marker = load_queries("delivery_postgresql")["mark_started"]
    with engine.connect() as claimer:
        [row] = OutboxStore(claimer, "w", 60).claim_due_rows(1)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET synchronous_commit = off")
        connection.commit()
        with connection.begin():
            marked = connection.execute(marker, {"id": row.id, "mailer_id": "w"})
            assert marked.rowcount == 1
            inside = connection.exec_driver_sql("SHOW synchronous_commit").scalar()
        outside = connection.execute(text("SHOW synchronous_commit")).scalar()

    assert (inside, outside) == ("on", "off")
