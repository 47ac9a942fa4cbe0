"""MAILER_CONCURRENCY: several SMTP connections per mailer, every guarantee kept."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from mailer_service.__main__ import build_scheduler, tick_now
from mailer_service.relay import Relay
from tests.support.outbox import all_sent, outbox_rows, seed_outbox, status_counts
from tests.support.processes import wait_until

INSERT_ONE = text(
    "INSERT INTO outbox (recipient, subject, body_text, message_id)"
    " VALUES ('b' || :n || '@example.com', 'Hi', 'x', '<b' || :n || '@example.com>')"
)
POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def test_relay_sends_over_concurrency_connections_at_once(make_relay, smtp, engine):
    ids = seed_outbox(engine, 40)
    smtp.delay = 0.05  # every message waits, so the connections overlap
    relay = make_relay(concurrency=4, batch_size=5)

    assert relay.run_tick() == len(ids)

    assert smtp.peak_in_data == 4
    assert len(smtp.peers) == 4  # one connection per sender, kept across batches
    assert sorted(smtp.message_ids().values()) == [1] * len(ids)
    assert status_counts(engine) == {"sent": len(ids)}


def test_relay_with_concurrency_still_records_each_failure(make_relay, smtp, engine):
    seed_outbox(engine, 12)
    smtp.fail_next("550 no such user", "451 try later")

    assert make_relay(concurrency=3, batch_size=2).run_tick() == 12

    rows = outbox_rows(engine)
    counts = status_counts(engine)
    assert counts == {"sent": 10, "failed": 1, "pending": 1}
    failed = next(r for r in rows if r["status"] == "failed")
    retried = next(r for r in rows if r["status"] == "pending")
    assert (failed["last_error"], failed["attempts"]) == ("550 no such user", 1)
    assert (retried["last_error"], retried["attempts"]) == ("451 try later", 1)
    assert all(r["locked_by"] is None for r in rows)


def test_relay_stop_mid_tick_releases_every_unsent_row(make_relay, smtp, engine):
    ids = seed_outbox(engine, 60)
    smtp.delay = 0.05
    relay = make_relay(concurrency=4, batch_size=10)
    stopped_after: list[int] = []  # messages accepted when stop() was called

    def stop_after_six(accepted: int) -> None:
        """Stop the relay once, as SIGTERM would, while messages are in flight."""
        if accepted >= 6 and not stopped_after:
            stopped_after.append(accepted)
            relay.stop()

    smtp.on_message = stop_after_six

    sent = relay.run_tick()

    counts = status_counts(engine)
    assert "sending" not in counts
    assert counts["sent"] == sent == len(smtp.messages)
    assert counts["pending"] == len(ids) - sent
    # Each sender finished at most the message it had in flight when told to stop.
    assert sent <= stopped_after[0] + 4


@POSTGRES_ONLY
def test_a_burst_of_inserts_during_a_tick_folds_into_one_more_tick(
    make_relay, smtp, engine
):
    """1,000 commits, each a wake-up, while a tick is busy: one tick follows."""
    ticks: list[int] = []
    burst_done = threading.Event()

    class CountingRelay(Relay):
        """A relay that counts the ticks that actually ran."""

        def drain(self) -> int:
            """Count the tick (one sender per tick here), then drain as usual."""
            ticks.append(1)
            return super().drain()

    # MAIL_TIMEOUT outlasts the held message, which must not time out.
    base = make_relay(
        concurrency=1, poll_interval=30, mail_timeout=30, lease_seconds=120
    )
    relay = CountingRelay(base.app, base.settings, "counting")
    scheduler = build_scheduler(relay, poll_interval=30)
    threading.Thread(target=scheduler.start, daemon=True).start()
    try:
        assert wait_until(lambda: len(ticks) == 1, 30)  # the first, at start-up
        # The next tick holds its first message at the SMTP server until the
        # whole burst has been committed, so every wake-up arrives mid-tick.
        smtp.on_message = lambda accepted: burst_done.wait(60) if not accepted else 0
        seed_outbox(engine, 1, prefix="first-")
        tick_now(relay, scheduler)
        assert wait_until(lambda: len(ticks) == 2, 30)
        with engine.connect() as producer:
            for n in range(999):  # 999 transactions, each committed on its own
                producer.execute(INSERT_ONE, {"n": n})
                producer.commit()
                tick_now(relay, scheduler)  # what the listener does on a NOTIFY
        burst_done.set()

        assert wait_until(all_sent(engine, 1000), 120)
    finally:
        burst_done.set()
        relay.stop()
        scheduler.shutdown(wait=False)
        relay.join()

    assert len(ticks) == 3  # start-up, the busy tick, and one that followed it
    assert sorted(smtp.message_ids().values()) == [1] * 1000
