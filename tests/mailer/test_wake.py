"""Wake on commit: an INSERT wakes an idle mailer long before its poll interval.

Every test runs real mailer processes on PostgreSQL with an hour-long poll
interval, so any delivery after the first tick can only come from a wake-up
(LISTEN/NOTIFY, or the listener's look after it reconnects). The waits are
generous upper bounds for a busy machine, and still far short of the poll.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy import Engine, text

from tests.support.outbox import all_sent, seed_outbox
from tests.support.processes import MailerProcess, wait_until

pytestmark = pytest.mark.slow

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

POLL = "3600"  # seconds: longer than the whole test run, so the poll never ticks
WAKE_TIMEOUT = 120.0  # seconds a woken delivery may take on a busy machine
LISTENING = "listening for new outbox rows"


def listening_count(mailer) -> int:
    """Return how many times the mailer's listener has (re)connected."""
    return mailer.log().count(LISTENING)


def idle_mailer(start: Callable[..., MailerProcess], engine: Engine) -> MailerProcess:
    """Start a mailer; return once it listens and its start-up tick is over.

    The first tick runs at start-up whatever the poll, and it could deliver a
    row inserted before it ends without any wake-up. So one row waits for it,
    and the test's own rows come only after that row is sent.
    """
    seed_outbox(engine, 1, prefix="startup-")
    mailer = start(MAILER_POLL_INTERVAL=POLL)
    assert wait_until(lambda: listening_count(mailer) == 1, 60), mailer.log()
    assert wait_until(all_sent(engine, 1), WAKE_TIMEOUT), mailer.log()
    return mailer


@POSTGRES_ONLY
def test_insert_wakes_an_idle_mailer_before_its_poll(start_mailer, smtp, engine):
    mailer = idle_mailer(start_mailer, engine)

    for count in (1, 2, 3):  # each insert is its own wake-up
        seed_outbox(engine, 1, prefix=f"w{count}-")
        assert wait_until(all_sent(engine, 1 + count), WAKE_TIMEOUT), mailer.log()

    assert sorted(smtp.message_ids().values()) == [1] * 4


@POSTGRES_ONLY
def test_insert_by_hand_in_sql_wakes_the_mailer(start_mailer, smtp, engine):
    """A row inserted by hand (plain SQL, no application code) wakes it too."""
    mailer = idle_mailer(start_mailer, engine)

    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox (recipient, subject, body_text, message_id)"
                " VALUES ('hand@example.com', 'By hand', 'Hi', '<hand@example.com>')"
            )
        )

    assert wait_until(all_sent(engine, 2), WAKE_TIMEOUT), mailer.log()


@POSTGRES_ONLY
def test_listener_recovers_after_its_backend_is_terminated(
    start_mailer, smtp, engine, postgres_server
):
    """A row inserted while the listener cannot reconnect is sent once it can."""
    mailer = idle_mailer(start_mailer, engine)
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
        assert wait_until(lambda: "listener lost its connection" in mailer.log(), 60)
        # The listener is down and cannot come back: this NOTIFY reaches no one.
        producer.execute(
            text(
                "INSERT INTO outbox (recipient, subject, body_text, message_id)"
                " VALUES ('gap@example.com', 'Gap', 'Hi', '<gap@example.com>')"
            )
        )
        producer.commit()
        admin.execute(text(f"{allow} true"))

    # Reconnect delays double from 0.5 s: the listener is back within seconds,
    # and its look after reconnecting is the only thing that can send the row.
    assert wait_until(all_sent(engine, 2), WAKE_TIMEOUT), mailer.log()
    assert listening_count(mailer) == 2


def test_listener_recovers_after_the_database_restarts(
    cluster, cluster_engine, start_cluster_mailer, smtp
):
    mailer = idle_mailer(start_cluster_mailer, cluster_engine)
    cluster.stop("fast")
    cluster.start()
    assert wait_until(lambda: listening_count(mailer) == 2, 60), mailer.log()

    seed_outbox(cluster_engine, 1)

    assert wait_until(all_sent(cluster_engine, 2), WAKE_TIMEOUT), mailer.log()
    assert mailer.terminate() == 0


def notified(url, insert: str, timeout: float = 2.0) -> bool:
    """Run ``insert`` in its own transaction; tell whether a listener was notified."""
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute("LISTEN outbox_due")
        with psycopg.connect(conninfo, autocommit=True) as producer:
            producer.execute(insert)
        return any(True for _ in listener.notifies(timeout=timeout, stop_after=1))


PLAIN_INSERT = (
    "INSERT INTO outbox (recipient, subject, body_text, message_id)"
    " VALUES ('a@example.com', 'Hi', 'x', '<{n}@example.com>')"
)


def test_producers_notify_only_while_a_mailer_waits(pg_url, pg_engine):
    """No waiter: a commit takes no NOTIFY lock. A waiter: the commit notifies."""
    quiet = notified(pg_url, PLAIN_INSERT.format(n=1), timeout=1.0)
    with pg_engine.begin() as connection:
        connection.execute(
            text("INSERT INTO outbox_waiters (pid, worker) VALUES (1, 'someone')")
        )
    heard = notified(pg_url, PLAIN_INSERT.format(n=2))

    assert (quiet, heard) == (False, True)


@POSTGRES_ONLY
def test_an_idle_mailer_waits_and_leaves_when_stopped(start_mailer, engine):
    mailer = start_mailer(MAILER_POLL_INTERVAL=POLL)

    def waiters() -> list[str]:
        """Return the workers in outbox_waiters."""
        with engine.connect() as connection:
            query = text("SELECT worker FROM outbox_waiters")
            return connection.execute(query).scalars().all()

    assert wait_until(lambda: len(waiters()) == 1, 60), mailer.log()
    assert mailer.terminate() == 0
    assert waiters() == []
