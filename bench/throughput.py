"""Mailer delivery throughput: N processes drain the outbox; counted in PostgreSQL.

Each drain starts the mailers on an empty outbox and waits until each holds a
database connection, so none starts late; then it writes real signups' rows
in one transaction, so they all become due at once, and waits until no row
is ``pending`` or ``sending``. The rate is sent rows over
max(sent_at) - min(sent_at), so process start-up is not counted, and every
row must end ``sent``. The same run's ceilings (``bench.ceilings``) are the
yardsticks: the raw smtplib and the Flask-Mail loops against the same server.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bench import database, pg
from bench.ceilings import Ceiling, measure_ceilings
from bench.context import Bench
from bench.messages import rate
from bench.procs import Child, start_mailer
from bench.sinks import Sink, sink_label

DRAIN_TIMEOUT = 600.0  # seconds; far more than a drain takes on a busy machine
READY_TIMEOUT = 60.0  # seconds for the mailers to connect; the machine is shared
POLL_SECONDS = 0.2  # how often the drain's progress is read

# Writes one outbox row per address to the database at the URL, in one transaction.
Fill = Callable[[str, list[str]], None]

# Our own connection is left out; the mailers are the only other clients.
CONNECTED = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database()
  AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
"""


@dataclass(frozen=True)
class Drain:
    """What N mailer processes did to a full outbox."""

    processes: int
    sink: str
    rows: int  # rows in the outbox when the mailers started
    sent: int  # rows ``sent`` afterwards
    span: float  # seconds from the first sent_at to the last
    attempts: int  # delivery attempts recorded: ``sent`` when none was retried
    setting: str = ""  # a setting that differs from the other drains, if any

    @property
    def name(self) -> str:
        """Return a label such as ``2 mailer processes``."""
        name = f"{self.processes} mailer process{'es' if self.processes > 1 else ''}"
        return f"{name}, `{self.setting}`" if self.setting else name

    @property
    def per_second(self) -> float:
        """Return sent rows per second of the sent_at span."""
        return rate(self.sent, self.span)

    @property
    def attempts_per_second(self) -> float:
        """Return attempts (each one claim of a row, one outcome write) per second."""
        return rate(self.attempts, self.span)


@dataclass(frozen=True)
class MailerFigures:
    """The mailer drains and the ceilings they are compared with, from one run."""

    ceilings: dict[str, Ceiling]  # against smtp-sink, keyed by loop
    drains: list[Drain]  # against smtp-sink, one per process count
    relay_ceilings: dict[str, Ceiling]  # against the 50 ms relay sink
    relay_drain: Drain  # one mailer against the 50 ms relay sink
    hold_drain: Drain  # one mailer against smtp-sink with MAILER_ON_AMBIGUOUS=hold
    concurrency: str  # MAILER_CONCURRENCY as run: a number or "default"
    effective_concurrency: int  # connections per mailer the relay target assumes


def _check_alive(mailers: list[Child]) -> None:
    """Fail with the log of the first mailer that exited."""
    dead = [m for m in mailers if m.process.poll() is not None]
    if dead:
        raise RuntimeError(f"a mailer exited:\n{dead[0].tail()}")


def wait_connected(url: str, mailers: list[Child]) -> None:
    """Wait until the database has a client per mailer (each polled once)."""
    deadline = time.monotonic() + READY_TIMEOUT
    with pg.connect(url) as connection:
        while True:
            _check_alive(mailers)
            row = connection.execute(CONNECTED).fetchone()
            if row and row[0] >= len(mailers):
                return
            if time.monotonic() > deadline:
                # A mailer may not keep its connection between polls: go on.
                print(
                    f"note: {len(mailers)} mailer(s) never held as many database"
                    " connections; draining anyway",
                    file=sys.stderr,
                )
                return
            time.sleep(POLL_SECONDS)


def wait_drained(url: str, mailers: list[Child]) -> None:
    """Wait until no row is pending or sending; fail if the mailers die."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    with pg.connect(url) as connection:
        while pg.count_unfinished(connection):
            _check_alive(mailers)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(mailers)} mailer(s) did not drain in time")
            time.sleep(POLL_SECONDS)


class DrainHooks(Protocol):
    """What a caller may add to a drain: mailer settings, a look before and after."""

    def env(self, n: int) -> dict[str, str]:
        """Return more variables for mailer ``n``."""
        ...

    def filling(self, mailers: list[Child]) -> None:
        """Called once the mailers are connected, just before the rows are written."""
        ...

    def drained(self) -> None:
        """Called once every row is sent, while the mailers still run."""
        ...


def drain(
    bench: Bench,
    sink: Sink,
    processes: int,
    rows: int,
    tag: str,
    setting: str = "",
    fill: Fill = database.insert_signups,
    hooks: DrainHooks | None = None,
) -> Drain:
    """Start ``processes`` mailers, then give them ``rows`` signups to drain.

    ``setting`` (``NAME=value``) is one more variable for the mailers; ``fill``
    writes the rows (default: real signups' users and welcome mails); ``hooks``
    may add to each mailer's environment and look before and after.
    """
    extra = dict([setting.split("=", 1)]) if setting else {}
    database.truncate(bench.db_url)
    mailers: list[Child] = []
    try:
        for n in range(processes):
            log = bench.log(f"{tag}-mailer-{n}")
            env = {**bench.mailer_env(sink), **extra, **(hooks.env(n) if hooks else {})}
            mailers.append(start_mailer(env, log))
        wait_connected(bench.db_url, mailers)
        if hooks:
            hooks.filling(mailers)
        # One transaction: every row becomes due at the same instant.
        fill(bench.db_url, [f"{tag}-{i}@example.com" for i in range(rows)])
        wait_drained(bench.db_url, mailers)
        if hooks:
            hooks.drained()
    finally:
        for mailer in mailers:
            mailer.stop()
    tally = pg.tally(bench.db_url)
    if tally.sent != rows:
        raise RuntimeError(f"{tag}: not every row was sent: {tally.statuses}")
    return Drain(
        processes,
        sink_label(sink),
        rows,
        tally.sent,
        tally.span,
        tally.attempts,
        setting,
    )


def measure_drains(bench: Bench, sink: Sink, counts: list[int]) -> list[Drain]:
    """Drain ``bench.mailer_rows`` rows with each number of mailer processes."""
    return [drain(bench, sink, n, bench.mailer_rows, f"drain-{n}") for n in counts]


def measure_mailer_figures(
    bench: Bench, counts: list[int], concurrency: str, effective_concurrency: int
) -> MailerFigures:
    """Measure the ceilings and the drains against smtp-sink and the relay sink."""
    ceilings = measure_ceilings(bench, bench.sink, bench.mailer_rows)
    drains = measure_drains(bench, bench.sink, counts)
    relay_ceilings = measure_ceilings(bench, bench.relay, bench.relay_rows)
    relay_drain = drain(bench, bench.relay, 1, bench.relay_rows, "relay-1")
    hold_drain = drain(
        bench, bench.sink, 1, bench.mailer_rows, "hold-1", "MAILER_ON_AMBIGUOUS=hold"
    )
    return MailerFigures(
        ceilings,
        drains,
        relay_ceilings,
        relay_drain,
        hold_drain,
        concurrency,
        effective_concurrency,
    )
