"""Capacity figures for sizing: signups/s per gunicorn worker, claims/s per mailer.

Off by default (``--capacity``). Everything, PostgreSQL included, shares the
same cores, so these are what this machine sustains, not what PostgreSQL
alone could: they are inputs for a sizing note, not limits of the design.
The mailers' claim and completer statements are their own counters
(:mod:`bench.metered_drain`), not derived from a batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import database
from bench.context import Bench
from bench.latency import OUTBOX_APP
from bench.load import LoadResult, run_load
from bench.metered_drain import MeteredDrain, measure_metered_drains
from bench.procs import start_gunicorn
from bench.smtp_sink import free_port
from bench.throughput import Drain

WARMUP_PER_CLIENT = 2  # unmeasured signups per client thread


@dataclass(frozen=True)
class SignupCapacity:
    """Closed-loop signups against the real app with ``workers`` workers."""

    workers: int
    result: LoadResult

    @property
    def per_worker(self) -> float:
        """Return 2xx signups per second per gunicorn worker."""
        return self.result.throughput / self.workers


@dataclass(frozen=True)
class Capacity:
    """Signup capacity per worker count, and drains per mailer process count."""

    signups: list[SignupCapacity]
    metered: list[MeteredDrain]  # one per mailer process count

    @property
    def drains(self) -> list[Drain]:
        """Return the drains alone, as the throughput chart plots them."""
        return [m.drain for m in self.metered]


def measure_signups(bench: Bench, workers: int, requests: int) -> SignupCapacity:
    """Serve the signup service with ``workers`` workers under closed-loop load."""
    database.truncate(bench.db_url)
    port = free_port()
    name = f"capacity-{workers}w"
    web = start_gunicorn(
        OUTBOX_APP, port, bench.outbox_env(bench.sink), bench.log(name), workers
    )
    try:
        warmup = [
            f"warm-{name}-{i}@example.com"
            for i in range(WARMUP_PER_CLIENT * bench.concurrency)
        ]
        run_load(port, warmup, bench.concurrency)
        emails = [f"{name}-{i}@example.com" for i in range(requests)]
        result = run_load(port, emails, bench.concurrency)
    finally:
        web.stop()
    return SignupCapacity(workers, result)


def measure_capacity(
    bench: Bench, requests: int, workers: list[int], processes: list[int]
) -> Capacity:
    """Measure signups/s per worker count and drains per mailer process count."""
    signups = [measure_signups(bench, n, requests) for n in workers]
    return Capacity(signups, measure_metered_drains(bench, bench.sink, processes))
