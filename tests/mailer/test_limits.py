"""Fleet-wide limits: send rate and SMTP connections across mailer processes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import NamedTuple

import pytest
from sqlalchemy import Engine, text

from mailer_service.app import create_app as create_mailer_app
from mailer_service.app import db as mailer_db
from mailer_service.config import mailer_settings
from mailer_service.limits import Throttle
from mailer_service.store import OutboxStore
from outbox_contract.settings import ConfigError
from tests.support.databases import url_string
from tests.support.outbox import all_sent, seed_outbox, status_counts
from tests.support.processes import wait_until

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
GATE_TIMEOUT = 15  # seconds the SMTP server holds DATA for a second sender
METER = text("SELECT next_at, clock_timestamp() FROM outbox_send_rate WHERE id = 1")
METER_UPDATES = text(
    "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'outbox_send_rate'"
)


class Turn(NamedTuple):
    """One turn of the rate: the database clock around it, and next_at after it."""

    before: datetime
    after: datetime
    next_at: datetime


def meter_updates(engine: Engine) -> int:
    """Return how many times the meter's row was updated (turns taken)."""
    with engine.connect() as connection:
        return connection.execute(METER_UPDATES).scalar_one()


def meter_reading(engine: Engine) -> tuple[datetime, datetime]:
    """Return the shared next send time and the database's clock, read together."""
    with engine.connect() as connection:
        return tuple(connection.execute(METER).one())


def take_turn(store: OutboxStore, engine: Engine, interval: float) -> Turn:
    """Take one turn of the rate, waiting as told; return it with its clock.

    A turn comes with the database clock read just before and just after it,
    and the next send time it left: the turn's own moment lies between the two.
    """
    while True:
        _, before = meter_reading(engine)
        wait = store.take_send_turn(interval)
        next_at, after = meter_reading(engine)
        if wait == 0:
            return Turn(before, after, next_at)
        time.sleep(wait)  # not our turn yet: wait as a sender would


@POSTGRES_ONLY
def test_send_turns_from_two_sessions_advance_the_shared_meter(database_url, engine):
    """N turns taken through two connections push next_at on by N intervals."""
    interval = 0.05  # seconds between sends: a rate of 20/s
    turns_each = 10
    mailer = create_mailer_app({"DATABASE_URL": url_string(database_url)})
    with mailer.app_context(), ExitStack() as stack:
        stores = [
            OutboxStore(stack.enter_context(mailer_db.engine.connect()), name, 30)
            for name in ("one", "two")
        ]
        start, _ = meter_reading(engine)
        turns = [
            take_turn(store, engine, interval)
            for _ in range(turns_each)
            for store in stores  # the two sessions take turns about
        ]
        final, _ = meter_reading(engine)
        stack.close()
        mailer_db.engine.dispose()

    step = timedelta(seconds=interval)
    previous = start
    for turn in turns:
        # Taken at a moment m in [before, after], once next_at had come:
        # next_at becomes max(previous next_at, m) + interval.
        assert max(previous, turn.before) + step <= turn.next_at, turn
        assert turn.next_at <= max(previous, turn.after) + step, turn
        previous = turn.next_at
    # All in all: 2N turns, each one interval on from the last (or from now).
    first_base = max(start, turns[0].before)
    assert final == turns[-1].next_at
    assert final >= first_base + len(turns) * step


@POSTGRES_ONLY
def test_send_turns_racing_from_two_sessions_never_share_a_slot(database_url, engine):
    """Two threads at once: each turn still pushes next_at one interval on."""
    interval = 0.02  # seconds between sends: a rate of 50/s
    turns_each = 15
    mailer = create_mailer_app({"DATABASE_URL": url_string(database_url)})
    with mailer.app_context():
        mailer_engine = mailer_db.engine

    def take_turns(name: str) -> None:
        """Take ``turns_each`` turns on a connection of this thread's own."""
        with mailer_engine.connect() as connection:
            store = OutboxStore(connection, name, 30)
            for _ in range(turns_each):
                while (wait := store.take_send_turn(interval)) > 0:
                    time.sleep(wait)

    start, now = meter_reading(engine)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(take_turns, ["one", "two"]))
    final, _ = meter_reading(engine)
    mailer_engine.dispose()

    # Two turns that read the same next_at would have moved it on only once.
    first_base = max(start, now)
    assert final >= first_base + 2 * turns_each * timedelta(seconds=interval)


@POSTGRES_ONLY
def test_a_turn_not_yet_due_waits_and_moves_nothing(database_url, engine):
    """While next_at is ahead, no connection gets a turn and next_at stays put."""
    mailer = create_mailer_app({"DATABASE_URL": url_string(database_url)})
    with mailer.app_context(), mailer_db.engine.connect() as connection:
        store = OutboxStore(connection, "w", 30)
        assert store.take_send_turn(3600) == 0  # next_at is now an hour ahead
        ahead, _ = meter_reading(engine)
        wait = store.take_send_turn(3600)
        after, _ = meter_reading(engine)
    with mailer.app_context():
        mailer_db.engine.dispose()

    assert 3000 < wait <= 3600  # seconds until the turn comes
    assert after == ahead


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
    assert sorted(smtp.message_ids().values()) == [1] * len(ids)
    # Every send took a turn of the one shared meter (an UPDATE of its row; the
    # spacing of turns is test_send_turns_from_two_sessions_advance_...). The
    # mailers' sessions report their counts as they end.
    assert wait_until(lambda: meter_updates(engine) >= len(ids), 30)


@POSTGRES_ONLY
def test_connection_cap_holds_across_two_mailers(start_mailer, smtp, engine):
    ids = seed_outbox(engine, 120)
    smtp.delay = 0.05  # each message holds its connection for a while
    # No DATA is answered before two are in DATA at once (MAIL_TIMEOUT outlasts
    # the wait): a cap that let only one connection through would never get there.
    gate = smtp.hold_data(2, GATE_TIMEOUT)
    cap = {
        "MAILER_MAX_CONNECTIONS": "3",
        "MAILER_CONCURRENCY": "4",
        "MAIL_TIMEOUT": str(2 * GATE_TIMEOUT),
        "MAILER_LEASE_SECONDS": str(8 * GATE_TIMEOUT),
    }
    mailers = [start_mailer(**cap) for _ in range(2)]

    assert wait_until(all_sent(engine, len(ids)), 120), mailers[0].log()

    codes = [m.terminate() for m in mailers]
    assert codes == [0, 0], [m.log()[-3000:] for m in mailers]
    assert smtp.peak_connections <= 3
    assert gate.reached  # the cap is a ceiling, not one connection
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


def test_421_too_many_connections_halves_the_senders(make_mailer, smtp, engine):
    seed_outbox(engine, 20)
    smtp.fail_next("421 4.7.0 Too many connections, slow down")
    # The pause after a refused connection starts at the poll interval (capped
    # at a minute): a 0.1 s one could end before run_tick returns, on a slow run.
    mailer = make_mailer(concurrency=4, batch_size=5, poll_interval=3600)

    mailer.run_tick()

    assert mailer.throttle.senders == 2
    assert mailer.pause.active  # and it stopped claiming for a while
    counts = status_counts(engine)
    assert counts.get("sending", 0) == 0
    assert counts["pending"] >= 1  # the refused row waits for its retry


def test_mailer_refuses_fleet_limits_on_sqlite() -> None:
    for name in ("MAILER_RATE_LIMIT", "MAILER_MAX_CONNECTIONS"):
        with pytest.raises(ConfigError, match=f"{name} needs PostgreSQL"):
            mailer_settings({"DATABASE_URL": "sqlite://", name: "5"})
