"""The mailer commits outcomes without waiting for the WAL flush; what that costs.

A mailer crash loses none of them (the server has them). A PostgreSQL crash
can lose the last fraction of a second of them; those messages are then sent
again, never lost. The signup's commit stays synchronous: a 201 is on disk.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from mailer_service import create_app as create_mailer_app
from mailer_service import db as mailer_db
from mailer_service.store import OutboxStore
from signup_service.database import db as signup_db
from tests.support.databases import url_string
from tests.support.outbox import all_sent, outbox_rows, seed_outbox
from tests.support.processes import wait_until

CRASH_WINDOW = 1.0  # seconds of outcomes a PostgreSQL crash may lose (~0.6 s)
CONCURRENCY = 4  # SMTP connections of the mailer under test


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


@pytest.mark.slow
def test_postgres_crash_loses_no_mail_and_repeats_only_its_last_moment(
    cluster, cluster_engine, start_cluster_mailer, smtp
):
    engine = cluster_engine
    ids = seed_outbox(engine, 800)
    smtp.delay = 0.01  # a steady stream of outcomes, some always in flight
    mailer = start_cluster_mailer(
        MAILER_POLL_INTERVAL="0.1", MAILER_CONCURRENCY=str(CONCURRENCY)
    )
    assert wait_until(lambda: len(smtp.messages) >= 200, 60), mailer.log()
    crashed_at = time.monotonic()
    cluster.stop("immediate")  # no checkpoint, no flush: a PostgreSQL crash
    assert wait_until(lambda: "database error" in mailer.log(), 30), mailer.log()
    cluster.start()

    assert wait_until(all_sent(engine, len(ids)), 120), mailer.log()
    assert mailer.terminate() == 0

    received = smtp.message_ids()
    assert set(received) == {row["message_id"] for row in outbox_rows(engine)}
    duplicates = sum(n - 1 for n in received.values())
    with smtp.lock:
        recent = sum(
            crashed_at - CRASH_WINDOW <= t <= crashed_at for t in smtp.accepted_at
        )
    # Only outcomes recorded in the crash window (plus those in flight) repeat.
    assert duplicates <= recent + CONCURRENCY, (duplicates, recent)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_hold_marker_alone_commits_synchronously(database_url, engine):
    """mark_started waits for the WAL flush, then the session is async again."""
    [row_id] = seed_outbox(engine, 1)
    mailer = create_mailer_app({"DATABASE_URL": url_string(database_url)})
    with mailer.app_context():
        with mailer_db.engine.connect() as connection:
            store = OutboxStore(connection, "w", 30)
            store.claim_due_rows(1)
            assert store.mark_started(row_id)
            after = connection.execute(text("SHOW synchronous_commit")).scalar()
        mailer_db.engine.dispose()

    assert after == "off"
    assert outbox_rows(engine)[0]["send_started_at"] is not None
