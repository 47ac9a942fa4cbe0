"""MAILER_CONCURRENCY: several SMTP connections per mailer, every guarantee kept."""

from __future__ import annotations

import threading

import pytest

from mailer_service.__main__ import build_scheduler, tick_now
from mailer_service.relay import Relay
from tests.support.outbox import all_sent, outbox_rows, seed_outbox, status_counts
from tests.support.processes import wait_until

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
    smtp.on_message = lambda sent: relay.stop() if sent >= 6 else None

    sent = relay.run_tick()

    counts = status_counts(engine)
    assert "sending" not in counts
    assert counts["sent"] == sent == len(smtp.messages)
    assert counts["pending"] == len(ids) - sent
    # Each sender finished at most the message it had in flight when told to stop.
    assert sent <= 6 + 4


@POSTGRES_ONLY
def test_a_burst_of_inserts_folds_into_few_ticks(make_relay, smtp, engine):
    """1,000 separate commits, each a NOTIFY: ticks coalesce, nothing is missed."""
    smtp.delay = 0.002

    ticks = []

    class CountingRelay(Relay):
        """A relay that counts the ticks that actually ran."""

        def drain(self) -> int:
            """Count the tick (one sender per tick here), then drain as usual."""
            ticks.append(1)
            return super().drain()

    base = make_relay(concurrency=1, poll_interval=30)
    relay = CountingRelay(base.app, base.settings, "counting")
    scheduler = build_scheduler(relay, poll_interval=30)
    runner = threading.Thread(target=scheduler.start, daemon=True)
    runner.start()
    try:
        assert wait_until(lambda: len(ticks) == 1, 30)  # the first, at start-up
        for n in range(1000):
            seed_outbox(engine, 1, prefix=f"b{n}-")
            tick_now(relay, scheduler)  # what the listener does on each NOTIFY

        assert wait_until(all_sent(engine, 1000), 120)
    finally:
        relay.stop()
        scheduler.shutdown(wait=False)
        relay.join()

    assert len(ticks) < 100
    assert sorted(smtp.message_ids().values()) == [1] * 1000
