"""What waking the mailer costs the producers: signups/s with wake-up on and off.

Sixteen threads each commit signup-shaped transactions (INSERT a user, INSERT
its welcome row, COMMIT, synchronously as the signup does) as fast as they
can, while one mailer drains them to the fast sink. "Wake-up on" is the
schema as shipped: the outbox trigger notifies while a mailer waits idle.
"Wake-up off" disables that trigger, so the mailer only polls. The mailer
runs in both, so both carry its claims and outcome writes; the phases
alternate, twice each, and each side's best run is compared.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psycopg

from bench import database, pg
from bench.context import Bench
from bench.procs import start_mailer
from bench.throughput import wait_connected

PRODUCERS = 16  # concurrent producer transactions, as the pgbench run
PHASE_SECONDS = 5.0  # measured seconds of each phase
ROUNDS = 2  # on, off, on, off
TRIGGER = "outbox_notify_due"
USER = "INSERT INTO users (email) VALUES (%s) RETURNING id"
WELCOME = (
    "INSERT INTO outbox (recipient, subject, body_text, message_id, dedupe_key)"
    " VALUES (%s, 'Welcome', 'Hello', %s, 'welcome:' || %s)"
)


@dataclass(frozen=True)
class ProducerFigures:
    """Signup transactions/s with the wake-up trigger on and off, per round."""

    on: list[float]
    off: list[float]

    @property
    def share(self) -> float:
        """Return the best wake-on rate as a share of the best wake-off rate."""
        return max(self.on) / max(self.off) if self.off and max(self.off) else 0.0


def commit_signup(connection: psycopg.Connection, name: str) -> None:
    """Commit one signup-shaped transaction: the user ``name``, then its welcome row."""
    email = f"{name}@example.com"
    with connection.transaction():
        row = connection.execute(USER, (email,)).fetchone()
        user_id = row[0] if row else 0
        connection.execute(WELCOME, (email, f"<{name}@bench>", user_id))


def _produce(url: str, tag: str, stop: threading.Event, done: list[int]) -> None:
    """Commit signup-shaped transactions until ``stop``; count them in ``done``."""
    with pg.connect(url) as connection:
        connection.autocommit = False
        n = 0
        while not stop.is_set():
            commit_signup(connection, f"{tag}-{n}")
            n += 1
        done.append(n)


def _phase(url: str, tag: str) -> float:
    """Run PRODUCERS threads for PHASE_SECONDS; return transactions/s."""
    stop, done = threading.Event(), []
    threads = [
        threading.Thread(target=_produce, args=(url, f"{tag}-{i}", stop, done))
        for i in range(PRODUCERS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(PHASE_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def _set_trigger(url: str, enabled: bool) -> None:
    """Enable or disable the wake-up trigger."""
    action = "ENABLE" if enabled else "DISABLE"
    with pg.connect(url) as connection:
        connection.execute(f"ALTER TABLE outbox {action} TRIGGER {TRIGGER}")


def measure_producers(bench: Bench) -> ProducerFigures:
    """Alternate wake-up on and off under one running mailer."""
    database.truncate(bench.db_url)
    mailer = start_mailer(bench.mailer_env(bench.sink), bench.log("producers-mailer"))
    on: list[float] = []
    off: list[float] = []
    try:
        wait_connected(bench.db_url, [mailer])
        for n in range(ROUNDS):
            for enabled, rates in ((True, on), (False, off)):
                _set_trigger(bench.db_url, enabled)
                rates.append(_phase(bench.db_url, f"p{n}{'on' if enabled else 'off'}"))
    finally:
        _set_trigger(bench.db_url, True)
        mailer.stop()
    return ProducerFigures(on, off)


def producers_section(figures: ProducerFigures | None) -> list[str]:
    """Return the Markdown section comparing wake-up on and off."""
    if figures is None:
        return []
    rows = [
        f"| {label} | {', '.join(f'{r:,.0f}' for r in rates)} | {max(rates):,.0f} |"
        for label, rates in (("wake-up on", figures.on), ("wake-up off", figures.off))
    ]
    return [
        "## Producers: what waking the mailer costs signups",
        "",
        f"{PRODUCERS} threads commit signup-shaped transactions (INSERT user, INSERT"
        " welcome row, synchronous COMMIT) for"
        f" {PHASE_SECONDS:g} s per phase while one mailer drains them to the fast"
        " sink; wake-up off disables the `outbox_notify_due` trigger (the mailer"
        " then only polls). Phases alternate, on first.",
        "",
        "| phase | transactions/s per round | best |",
        "|---|---:|---:|",
        *rows,
        "",
        f"Wake-up on runs at {figures.share:.0%} of wake-up off (target: at least"
        " 90 %).",
        "",
    ]
