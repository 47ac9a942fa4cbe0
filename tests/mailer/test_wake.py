"""Wake on commit: an INSERT wakes an idle mailer long before its poll interval.

Every test runs real mailer processes on PostgreSQL with a 30 s poll interval,
so a delivery within a few seconds can only come from LISTEN/NOTIFY.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.outbox import all_sent, seed_outbox
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

POLL = "30"  # seconds: far longer than any wait below
WELL_BEFORE_THE_POLL = 10.0  # seconds a woken delivery may take on a busy machine
LISTENING = "listening for new outbox rows"


def listening_count(mailer) -> int:
    """Return how many times the mailer's listener has (re)connected."""
    return mailer.log().count(LISTENING)


@POSTGRES_ONLY
def test_insert_wakes_an_idle_mailer_before_its_poll(start_mailer, smtp, engine):
    mailer = start_mailer(MAILER_POLL_INTERVAL=POLL)
    assert wait_until(lambda: listening_count(mailer) == 1, 30), mailer.log()

    for count in (1, 2, 3):  # each insert is its own wake-up
        seed_outbox(engine, 1, prefix=f"w{count}-")
        assert wait_until(all_sent(engine, count), WELL_BEFORE_THE_POLL), mailer.log()

    assert len(smtp.messages) == 3


@POSTGRES_ONLY
def test_insert_by_hand_in_sql_wakes_the_mailer(start_mailer, smtp, engine):
    """A row inserted by hand (plain SQL, no application code) wakes it too."""
    mailer = start_mailer(MAILER_POLL_INTERVAL=POLL)
    assert wait_until(lambda: listening_count(mailer) == 1, 30), mailer.log()

    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox (recipient, subject, body_text, message_id)"
                " VALUES ('hand@example.com', 'By hand', 'Hi', '<hand@example.com>')"
            )
        )

    assert wait_until(all_sent(engine, 1), WELL_BEFORE_THE_POLL), mailer.log()


@POSTGRES_ONLY
def test_listener_recovers_after_its_backend_is_terminated(
    start_mailer, smtp, engine, postgres_server
):
    """A row inserted while the listener cannot reconnect is sent once it can."""
    mailer = start_mailer(MAILER_POLL_INTERVAL=POLL)
    assert wait_until(lambda: listening_count(mailer) == 1, 30), mailer.log()
    allow = f'ALTER DATABASE "{engine.url.database}" ALLOW_CONNECTIONS'
    with engine.connect() as producer, postgres_server.admin.connect() as admin:
        admin.execute(text(f"{allow} false"))
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'outbox-listener' AND datname = :name"
            ),
            {"name": engine.url.database},
        )
        assert wait_until(lambda: "listener lost its connection" in mailer.log(), 30)
        # The listener is down and cannot come back: this NOTIFY reaches no one.
        producer.execute(
            text(
                "INSERT INTO outbox (recipient, subject, body_text, message_id)"
                " VALUES ('gap@example.com', 'Gap', 'Hi', '<gap@example.com>')"
            )
        )
        producer.commit()
        admin.execute(text(f"{allow} true"))

    # Reconnect delays double from 0.5 s: the listener is back within seconds.
    assert wait_until(all_sent(engine, 1), WELL_BEFORE_THE_POLL + 15), mailer.log()
    assert listening_count(mailer) == 2


def test_listener_recovers_after_the_database_restarts(
    cluster, cluster_engine, start_cluster_mailer, smtp
):
    mailer = start_cluster_mailer(MAILER_POLL_INTERVAL=POLL)
    assert wait_until(lambda: listening_count(mailer) == 1, 30), mailer.log()
    cluster.stop("fast")
    cluster.start()
    assert wait_until(lambda: listening_count(mailer) == 2, 60), mailer.log()

    seed_outbox(cluster_engine, 1)

    assert wait_until(all_sent(cluster_engine, 1), WELL_BEFORE_THE_POLL), mailer.log()
    assert mailer.terminate() == 0
