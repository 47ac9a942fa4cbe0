"""A drain whose mailers serve their metrics: what it cost the database, counted.

:func:`bench.throughput.drain` (mailers started on an empty outbox, every row
written in one transaction, waited for until sent), with hooks that give each
mailer a ``/metrics`` port of its own. Their counters are read just
before the rows are written and once every row is sent, before the mailers
stop; the differences, summed over the mailers, are the claim statements and
the completer's statements the drain took, rather than a guess from a batch
size the claimer no longer fills.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import pg
from bench.context import Bench
from bench.mailer_metrics import NO_WORK, WorkCounts, scrape, wait_serving
from bench.messages import rate
from bench.procs import Child
from bench.sinks import Sink
from bench.smtp_sink import free_port
from bench.throughput import Drain, drain

# Seconds to wait for the last outcome rows in the counters: the completer
# counts its statement just after the commit that shows the rows sent.
SETTLE_TIMEOUT = 5.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class MeteredDrain:
    """A drain, and the work its mailers counted from fill to the last 250."""

    drain: Drain
    counts: WorkCounts  # summed over the drain's mailers

    def _per_second(self, count: int) -> float:
        """Return ``count`` per second of the drain's sent_at span."""
        return rate(count, self.drain.span)

    @property
    def claims_per_second(self) -> float:
        """Return claim statements that found rows, per second."""
        return self._per_second(self.counts.claims_with_rows)

    @property
    def rows_per_claim(self) -> float:
        """Return rows claimed (one per attempt) per claim statement with rows."""
        claims = self.counts.claims_with_rows
        return self.drain.attempts / claims if claims else 0.0

    @property
    def completer_statements_per_second(self) -> float:
        """Return the completer's statements per second."""
        return self._per_second(self.counts.completer_statements)

    @property
    def rows_per_completer_statement(self) -> float:
        """Return outcome rows written per completer statement."""
        statements = self.counts.completer_statements
        return self.counts.completer_rows / statements if statements else 0.0


def _total(counts: list[WorkCounts]) -> WorkCounts:
    """Return the counts summed."""
    return sum(counts, NO_WORK)


def _free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports free right now."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def _settled(ports: list[int], before: list[WorkCounts], rows: int) -> WorkCounts:
    """Return the work since ``before``, once the counters hold ``rows`` outcomes."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        counts = _total(
            [scrape(p).since(b) for p, b in zip(ports, before, strict=True)]
        )
        if counts.completer_rows >= rows or time.monotonic() > deadline:
            return counts
        time.sleep(POLL_SECONDS)


class _Meter:
    """The drain's hooks: a metrics port per mailer, read before and after."""

    def __init__(self, db_url: str, processes: int) -> None:
        self.db_url = db_url
        self.ports = _free_ports(processes)
        self.before: list[WorkCounts] = []
        self.counts = NO_WORK

    def env(self, n: int) -> dict[str, str]:
        """Give mailer ``n`` its metrics port."""
        return {"MAILER_METRICS_PORT": str(self.ports[n])}

    def filling(self, mailers: list[Child]) -> None:
        """Wait until every mailer serves its metrics; read the counters."""
        for mailer, port in zip(mailers, self.ports, strict=True):
            wait_serving(mailer, port)
        self.before = [scrape(port) for port in self.ports]

    def drained(self) -> None:
        """Read what the drain added, once the counters hold every outcome."""
        attempts = pg.tally(self.db_url).attempts
        self.counts = _settled(self.ports, self.before, attempts)


def metered_drain(
    bench: Bench, sink: Sink, processes: int, rows: int, tag: str
) -> MeteredDrain:
    """Start ``processes`` mailers serving metrics; drain ``rows`` signups."""
    meter = _Meter(bench.db_url, processes)
    return MeteredDrain(
        drain(bench, sink, processes, rows, tag, hooks=meter), meter.counts
    )


def measure_metered_drains(
    bench: Bench, sink: Sink, counts: list[int]
) -> list[MeteredDrain]:
    """Drain ``bench.mailer_rows`` rows with each number of mailer processes."""
    return [
        metered_drain(bench, sink, n, bench.mailer_rows, f"capacity-drain-{n}")
        for n in counts
    ]
