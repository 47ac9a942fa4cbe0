"""Fleet-wide limits: send rate and SMTP connections across mailer processes."""

from __future__ import annotations

import pytest

from mailer_service.config import mailer_settings
from mailer_service.limits import BURST_SHARE, SendRate, Throttle
from outbox_contract.settings import ConfigError
from tests.support.outbox import all_sent, seed_outbox, status_counts
from tests.support.processes import wait_until

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def busiest_second(times: list[float]) -> int:
    """Return the most events in any window [t, t + 1 s) of ``times``."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_busiest_second_counts_a_half_open_window() -> None:
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert busiest_second([0.0, 1.0, 2.0]) == 1
    assert busiest_second([]) == 0


@pytest.mark.parametrize(("rate", "most"), [(40.0, 48), (14.0, 16), (5.0, 6)])
def test_send_rate_leaves_the_burst_allowance_to_latency(rate: float, most: int):
    """Turns 1/rate apart fit floor(1.2 x rate) into a second despite late sends.

    A turn delivered up to BURST_SHARE - 1/rate seconds late still keeps every
    1-second window within the limit: k turns fit a window while
    (k - 1) / rate < 1 + lateness.
    """
    meter = SendRate(rate, stopping=None)  # type: ignore[arg-type]
    lateness = BURST_SHARE - 1 / rate
    admitted = 1
    while admitted * meter.interval < 1 + lateness:
        admitted += 1

    assert meter.interval == 1 / rate  # turns exactly 1/rate apart, no burst
    assert admitted <= most


def test_throttle_halves_senders_and_regains_them_one_a_minute() -> None:
    throttle = Throttle(8)
    throttle.slow_down("w")
    throttle.slow_down("w")
    assert throttle.current() == 2

    throttle.recover_at = 0.0  # as if a quiet minute had passed
    assert throttle.current() == 3
    assert throttle.current() == 3  # one per minute, not one per call


@POSTGRES_ONLY
def test_rate_limit_holds_across_two_mailers(start_mailer, smtp, engine):
    ids = seed_outbox(engine, 120)
    limit = {"MAILER_RATE_LIMIT": "40", "MAILER_CONCURRENCY": "4"}
    mailers = [start_mailer(**limit) for _ in range(2)]

    assert wait_until(all_sent(engine, len(ids)), 120), mailers[0].log()

    codes = [m.terminate() for m in mailers]
    assert codes == [0, 0], [m.log()[-3000:] for m in mailers]
    with smtp.lock:
        accepted = list(smtp.accepted_at)
    assert len(accepted) == len(ids)
    assert busiest_second(accepted) <= 48  # 40/s plus a burst of at most 20 %


@POSTGRES_ONLY
def test_connection_cap_holds_across_two_mailers(start_mailer, smtp, engine):
    ids = seed_outbox(engine, 120)
    smtp.delay = 0.05  # each message holds its connection for a while
    cap = {"MAILER_MAX_CONNECTIONS": "3", "MAILER_CONCURRENCY": "4"}
    mailers = [start_mailer(**cap) for _ in range(2)]

    assert wait_until(all_sent(engine, len(ids)), 120), mailers[0].log()

    codes = [m.terminate() for m in mailers]
    assert codes == [0, 0], [m.log()[-3000:] for m in mailers]
    assert smtp.peak_connections <= 3
    assert smtp.peak_in_data >= 2  # the cap is a ceiling, not one connection
    assert status_counts(engine) == {"sent": len(ids)}


@POSTGRES_ONLY
def test_a_killed_mailer_leaks_no_connection_slot(start_mailer, smtp, engine):
    seed_outbox(engine, 40)
    smtp.delay = 0.2
    cap = {"MAILER_MAX_CONNECTIONS": "1", "MAILER_CONCURRENCY": "2"}
    victim = start_mailer(**cap)
    assert wait_until(lambda: len(smtp.messages) >= 1, 60), victim.log()
    victim.kill()  # it held the only slot

    survivor = start_mailer(**cap)

    assert wait_until(all_sent(engine, 40), 120), survivor.log()
    assert survivor.terminate() == 0


def test_421_too_many_connections_halves_the_senders(make_relay, smtp, engine):
    seed_outbox(engine, 20)
    smtp.fail_next("421 4.7.0 Too many connections, slow down")
    relay = make_relay(concurrency=4, batch_size=5, poll_interval=0.1)

    relay.run_tick()

    assert relay.throttle.senders == 2
    assert relay.pause.active  # and it stopped claiming for a while
    counts = status_counts(engine)
    assert counts.get("sending", 0) == 0
    assert counts["pending"] >= 1  # the refused row waits for its retry


def test_mailer_refuses_fleet_limits_on_sqlite() -> None:
    for name in ("MAILER_RATE_LIMIT", "MAILER_MAX_CONNECTIONS"):
        with pytest.raises(ConfigError, match=f"{name} needs PostgreSQL"):
            mailer_settings({"DATABASE_URL": "sqlite://", name: "5"})
