"""Real mailer processes: replicas, kill -9, SIGTERM, a silent server, a lost DB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest
from sqlalchemy import Engine, text

from mailer_service.completer import backlog_for
from tests.support import ROOT
from tests.support.databases import (
    url_string,
)
from tests.support.delivery_states import seed_every_state
from tests.support.outbox import all_sent, outbox_rows, seed_outbox, status_counts
from tests.support.processes import child_env, wait_until
from tests.support.smtp import HangingServer

pytestmark = pytest.mark.slow

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
KILL_CONCURRENCY = 4  # SMTP connections of each mailer in the kill -9 test
OTHER_SESSIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def other_sessions(engine: Engine) -> int:
    """Count the client sessions on the test's database besides this one."""
    with engine.connect() as connection:
        return connection.execute(OTHER_SESSIONS).scalar_one()


def test_mailer_process_delivers_and_stops_on_sigterm(start_mailer, smtp, engine):
    ids = seed_outbox(engine, 30)
    mailer = start_mailer()

    assert wait_until(all_sent(engine, len(ids)), 60), mailer.log()

    assert mailer.terminate() == 0
    assert sorted(smtp.message_ids().values()) == [1] * 30
    assert "stopped" in mailer.log()
    assert "outbox_id=1 attempt=1 result=sent code=250" in mailer.log()


@POSTGRES_ONLY
@pytest.mark.parametrize(("replicas", "rows"), [(2, 2000), (4, 1000)])
def test_replicas_deliver_every_row_exactly_once(
    start_mailer, smtp, engine, replicas, rows
):
    ids = seed_outbox(engine, rows)
    mailers = [start_mailer(MAIL_TIMEOUT="5", MAILER_LEASE_SECONDS="30",
                            MAILER_CONCURRENCY="4")
               for _ in range(replicas)]  # fmt: skip

    assert wait_until(all_sent(engine, len(ids)), 240), mailers[0].log()

    assert [m.terminate() for m in mailers] == [0] * replicas
    received = smtp.message_ids()
    assert set(received) == {r["message_id"] for r in outbox_rows(engine)}
    assert max(received.values()) == 1, received.most_common(3)
    # Every replica took part: the claim spreads work instead of serializing it.
    assert all("result=sent" in m.log() for m in mailers)
    # ... and each of them sent over several connections at once.
    assert len(smtp.peers) > replicas
    # The poll only rings the wake-up, so no run of it is ever skipped.
    assert not any("maximum number of running instances" in m.log() for m in mailers)


@POSTGRES_ONLY
def test_kill_9_mid_batch_loses_nothing_and_duplicates_at_most_the_bound_per_kill(
    start_mailer, smtp, engine
):
    ids = seed_outbox(engine, 300)
    smtp.delay = 0.01  # every message is in flight for a while
    senders = {"MAILER_CONCURRENCY": str(KILL_CONCURRENCY)}
    unrecorded: Counter[str] = Counter()  # deliveries a kill left without an outcome
    seen: Counter[str] = Counter()  # what the server had at the previous kill
    for target in (40, 120):
        victim = start_mailer(MAILER_BATCH_SIZE="50", **senders)
        assert wait_until(lambda t=target: len(smtp.messages) >= t, 60), victim.log()
        victim.kill()
        # Let what the dead process sent land, at the SMTP server and in PostgreSQL.
        assert wait_until(lambda: smtp.idle() and not other_sessions(engine), 60)
        received = smtp.message_ids()
        sent = {r["message_id"] for r in outbox_rows(engine) if r["status"] == "sent"}
        this_kill = Counter(
            {m: n for m, n in (received - seen).items() if m not in sent}
        )
        # At most one message in flight per SMTP connection of the killed
        # process, plus the outcomes its completer had not yet written.
        bound = KILL_CONCURRENCY + backlog_for(KILL_CONCURRENCY)
        assert sum(this_kill.values()) <= bound, this_kill
        unrecorded += this_kill
        seen = received
    assert status_counts(engine).get("sending", 0) > 0  # the dead left rows leased

    survivor = start_mailer(**senders)
    assert wait_until(all_sent(engine, len(ids)), 120), survivor.log()

    assert survivor.terminate() == 0
    # Each message exactly once, plus one copy for each delivery a kill left
    # unrecorded: nothing lost, and no duplicate the kills do not account for.
    every_row = Counter(r["message_id"] for r in outbox_rows(engine))
    assert smtp.message_ids() == every_row + unrecorded


@POSTGRES_ONLY
def test_sigterm_mid_batch_exits_0_and_leaves_nothing_in_flight(
    start_mailer, smtp, engine
):
    seed_outbox(engine, 200)
    smtp.delay = 0.02
    prefetch_full = threading.Event()
    stopped = threading.Event()

    def stop_with_rows_waiting(accepted: int) -> None:
        """At message 10, hold the server and SIGTERM once the prefetch is full.

        While this blocks the server, the 4 SMTP workers each wait for a reply
        and the claimer fills its prefetch: 4 rows in flight, 4 more waiting,
        which the stop must hand back.
        """
        if accepted >= 10 and not stopped.is_set():
            stopped.set()
            in_prefetch = 2 * 4  # sending and waiting, two per worker
            if wait_until(
                lambda: status_counts(engine).get("sending") == in_prefetch, 30
            ):
                prefetch_full.set()
            os.kill(mailer.proc.pid, signal.SIGTERM)

    smtp.on_message = stop_with_rows_waiting
    # Replies held that long must not time out: the stop is what ends them.
    mailer = start_mailer(
        MAILER_BATCH_SIZE="20",
        MAILER_CONCURRENCY="4",
        MAIL_TIMEOUT="10",
        MAILER_LEASE_SECONDS="60",
    )
    assert mailer.proc.wait(timeout=120) == 0, mailer.log()
    assert prefetch_full.is_set(), mailer.log()

    rows = outbox_rows(engine)
    assert not [r for r in rows if r["status"] == "sending"]
    sent = {r["message_id"] for r in rows if r["status"] == "sent"}
    assert sent == set(smtp.message_ids())  # every accepted mail is recorded
    pending = [r for r in rows if r["status"] == "pending"]
    assert pending, "the batch should have been interrupted"
    assert all(r["attempts"] == 0 and r["locked_by"] is None for r in pending)
    assert "released" in mailer.log()


def test_hanging_server_times_out_and_sigterm_still_stops_the_mailer(
    start_mailer, engine
):
    seed_outbox(engine, 3)
    with HangingServer() as hanging:
        mailer = start_mailer(MAIL_PORT=str(hanging.port))
        first_failed = lambda: outbox_rows(engine)[0]["attempts"] == 1  # noqa: E731
        assert wait_until(first_failed, 30), mailer.log()
        # The next tick is stuck on the silent server again; stop it there.
        assert wait_until(lambda: len(hanging.accepted) >= 2, 30), mailer.log()

        assert mailer.terminate(timeout=30) == 0

    rows = outbox_rows(engine)
    assert "timed out" in rows[0]["last_error"]
    assert not [r for r in rows if r["status"] == "sending"]
    assert status_counts(engine) == {"pending": 3}


@POSTGRES_ONLY
def test_mailer_survives_its_database_connections_being_killed(
    start_mailer, smtp, engine
):
    mailer = start_mailer()
    for round_ in range(1, 4):
        seed_outbox(engine, 5, prefix=f"round{round_}-")
        assert wait_until(all_sent(engine, 5 * round_), 60), mailer.log()
        with engine.connect() as connection:  # what a database restart does to it
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        assert killed >= 1
        assert mailer.alive()

    assert mailer.terminate() == 0
    assert sorted(smtp.message_ids().values()) == [1] * 15


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAIL_PORT": "smtp"}, "MAIL_PORT must be an integer"),
        ({"MAILER_BATCH_SIZE": "0"}, "MAILER_BATCH_SIZE must be at least 1"),
        ({"MAILER_POLL_INTERVAL": "-1"}, "MAILER_POLL_INTERVAL must be greater than 0"),
        ({"MAIL_TIMEOUT": "30", "MAILER_LEASE_SECONDS": "60"}, "MAILER_LEASE_SECONDS"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must use"),
    ],
)
def test_mailer_refuses_to_start_on_bad_config(env, message):
    result = subprocess.run(
        [sys.executable, "-m", "mailer_service"],
        cwd=ROOT,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert message in result.stderr


def test_mailer_once_delivers_what_is_due_and_exits(database_url, smtp, engine):
    seed_outbox(engine, 25)
    env = {"DATABASE_URL": url_string(database_url), "MAIL_PORT": str(smtp.port)}

    result = subprocess.run(
        [sys.executable, "-m", "mailer_service", "--once"],
        cwd=ROOT,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert status_counts(engine) == {"sent": 25}
    assert sorted(smtp.message_ids().values()) == [1] * 25


def test_mailer_help_names_its_configuration():
    result = subprocess.run(
        [sys.executable, "-m", "mailer_service", "--help"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0
    assert "DATABASE_URL" in result.stdout and "--once" in result.stdout


def test_mailer_resumes_after_the_database_server_restarts(
    cluster, cluster_engine, start_cluster_mailer, smtp
):
    engine = cluster_engine
    mailer = start_cluster_mailer(MAILER_POLL_INTERVAL="0.1")
    seed_outbox(engine, 5, prefix="before-")
    assert wait_until(all_sent(engine, 5), 60), mailer.log()

    cluster.stop()
    assert wait_until(lambda: "database error" in mailer.log(), 30), mailer.log()
    assert mailer.alive()
    cluster.start()

    seed_outbox(engine, 5, prefix="after-")
    assert wait_until(all_sent(engine, 10), 60), mailer.log()
    assert "database is back" in mailer.log()
    assert mailer.terminate() == 0
    assert sorted(smtp.message_ids().values()) == [1] * 10


def test_retention_job_redacts_old_sent_rows(start_mailer, smtp, engine):
    seed_every_state(engine)  # its one sent row was delivered two days ago
    key = "r" * 40
    mailer = start_mailer(MAILER_RETENTION_DAYS="1", MAILER_REDACTION_KEY=key)

    def redacted() -> bool:
        """Tell whether the old sent row was redacted."""
        return any(r["recipient_hash"] for r in outbox_rows(engine))

    assert wait_until(redacted, 30), mailer.log()
    assert mailer.terminate() == 0
    assert "redacted 1 sent rows" in mailer.log()


def test_retention_needs_a_redaction_key(start_mailer):
    mailer = start_mailer(MAILER_RETENTION_DAYS="30")

    assert mailer.proc.wait(30) == 2
    assert "MAILER_REDACTION_KEY must be set" in mailer.log()
