"""MAILER_CONCURRENCY: several SMTP connections per mailer, every guarantee kept."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from mailer_service.__main__ import build_scheduler
from mailer_service.mailer import Mailer
from mailer_service.wakeup import Wakeup, deliver_when_woken
from tests.support.metrics import Delta
from tests.support.outbox import all_sent, outbox_rows, seed_outbox, status_counts
from tests.support.processes import wait_until

INSERT_ONE = text(
    "INSERT INTO outbox (recipient, subject, body_text, message_id)"
    " VALUES ('b' || :n || '@example.com', 'Hi', 'x', '<b' || :n || '@example.com>')"
)
POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
# Sessions of the mailer inside a transaction (or holding one idle) right now.
OPEN_TRANSACTIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
)
GATE_TIMEOUT = 20.0  # seconds the SMTP server waits for all senders to be in DATA
AN_HOUR = 3600  # seconds: a poll that never comes during a test, so only wakes tick


def test_mailer_sends_over_concurrency_connections_at_once(make_mailer, smtp, engine):
    ids = seed_outbox(engine, 40)
    # No DATA is answered until 4 are in DATA together: the senders overlap by
    # construction, not by luck of the scheduler. MAIL_TIMEOUT outlasts the wait.
    gate = smtp.hold_data(4, GATE_TIMEOUT)
    mailer = make_mailer(
        concurrency=4, batch_size=5, mail_timeout=2 * GATE_TIMEOUT, lease_seconds=160
    )

    assert mailer.run_tick() == len(ids)

    assert gate.reached  # 4 were in DATA at once ...
    assert smtp.peak_in_data == 4  # ... and never more than MAILER_CONCURRENCY
    assert len(smtp.peers) == 4  # one connection per sender, kept across batches
    assert sorted(smtp.message_ids().values()) == [1] * len(ids)
    assert status_counts(engine) == {"sent": len(ids)}


@POSTGRES_ONLY
def test_no_transaction_stays_open_while_smtp_holds_messages(make_mailer, smtp, engine):
    """Claim, commit, then send: nothing is held in PostgreSQL during SMTP I/O."""
    seed_outbox(engine, 4)
    released = threading.Event()
    # The server sits on the first DATA it gets (its loop blocks: no other
    # answer goes out either) until the test has looked at the database.
    smtp.on_message = lambda _accepted: released.wait(60)
    mailer = make_mailer(
        concurrency=2, batch_size=2, mail_timeout=90, lease_seconds=360
    )
    tick = threading.Thread(target=mailer.run_tick)
    tick.start()
    try:
        assert wait_until(lambda: len(smtp.received) >= 1, 30)
        with engine.connect() as connection:
            open_transactions = connection.execute(OPEN_TRANSACTIONS).scalar_one()
    finally:
        released.set()
        tick.join(120)

    assert open_transactions == 0
    assert sorted(smtp.message_ids().values()) == [1] * 4


def test_mailer_with_concurrency_still_records_each_failure(make_mailer, smtp, engine):
    seed_outbox(engine, 12)
    smtp.fail_next("550 no such user", "451 try later")

    assert make_mailer(concurrency=3, batch_size=2).run_tick() == 12

    rows = outbox_rows(engine)
    counts = status_counts(engine)
    assert counts == {"sent": 10, "failed": 1, "pending": 1}
    failed = next(r for r in rows if r["status"] == "failed")
    retried = next(r for r in rows if r["status"] == "pending")
    assert (failed["last_error"], failed["attempts"]) == ("550 no such user", 1)
    assert (retried["last_error"], retried["attempts"]) == ("451 try later", 1)
    assert all(r["locked_by"] is None for r in rows)


def test_mailer_stop_mid_tick_releases_every_unsent_row(make_mailer, smtp, engine):
    ids = seed_outbox(engine, 60)
    smtp.delay = 0.05
    mailer = make_mailer(concurrency=4, batch_size=10)
    stopped_after: list[int] = []  # messages accepted when stop() was called

    def stop_after_six(accepted: int) -> None:
        """Stop the mailer once, as SIGTERM would, while messages are in flight."""
        if accepted >= 6 and not stopped_after:
            stopped_after.append(accepted)
            mailer.stop()

    smtp.on_message = stop_after_six

    sent = mailer.run_tick()

    counts = status_counts(engine)
    assert "sending" not in counts
    assert counts["sent"] == sent == len(smtp.messages)
    assert counts["pending"] == len(ids) - sent
    # Each sender finished at most the message it had in flight when told to stop.
    assert sent <= stopped_after[0] + 4


@POSTGRES_ONLY
def test_a_burst_of_inserts_during_a_tick_folds_into_one_more_tick(
    make_mailer, smtp, engine
):
    """1,000 commits, each a wake-up, while a tick is busy: one tick follows."""
    ticks: list[int] = []
    burst_done = threading.Event()

    class CountingMailer(Mailer):
        """A mailer that counts the ticks that actually ran."""

        def _deliver(self, engine) -> int:
            """Count the tick's pipeline run, then deliver as usual."""
            ticks.append(1)
            return super()._deliver(engine)

    # MAIL_TIMEOUT outlasts the held message, which must not time out. The poll
    # never comes while the test runs, so every tick after the first is a wake.
    base = make_mailer(
        concurrency=1, poll_interval=AN_HOUR, mail_timeout=90, lease_seconds=360
    )
    mailer = CountingMailer(base.app, base.settings, "counting")
    wakeup = Wakeup()
    scheduler = build_scheduler(wakeup, poll_interval=AN_HOUR)
    counted = Delta(
        ("mailer_ticks_total", {}),
        ("mailer_claims_total", {"found": "empty"}),
    )
    delivery = threading.Thread(target=deliver_when_woken, args=(mailer, wakeup))
    delivery.start()
    threading.Thread(target=scheduler.start, daemon=True).start()
    try:
        assert wait_until(lambda: len(ticks) == 1, 30)  # the first, at start-up
        # The next tick holds its first message at the SMTP server until the
        # whole burst has been committed, so every wake-up arrives mid-tick.
        smtp.on_message = lambda accepted: burst_done.wait(60) if not accepted else 0
        seed_outbox(engine, 1, prefix="first-")
        wakeup.ring()
        assert wait_until(lambda: len(ticks) == 2, 30)
        with engine.connect() as producer:
            for n in range(999):  # 999 transactions, each committed on its own
                producer.execute(INSERT_ONE, {"n": n})
                producer.commit()
                wakeup.ring()  # what the listener does on a NOTIFY
        burst_done.set()

        assert wait_until(all_sent(engine, 1000), 120)
    finally:
        burst_done.set()
        mailer.stop()
        wakeup.ring()
        scheduler.shutdown(wait=False)
        delivery.join(60)
        mailer.join()

    # Start-up, the busy tick, and the one wake-up tick that followed it; the
    # hour-long poll cannot have added one, however slowly this ran.
    assert len(ticks) == 3
    # The metrics an operator reads say the same: three ticks, and at most one
    # claim per tick found nothing (the start-up tick's; a tick ends on a short
    # claim, so a busy one costs no empty claim at all).
    ticks_counted, empty_claims = counted()
    assert ticks_counted == 3
    assert empty_claims <= 3
    assert sorted(smtp.message_ids().values()) == [1] * 1000
