"""Capacity figures for sizing: signups/s per gunicorn worker, claims/s per mailer.

Off by default (``--capacity``). Everything, PostgreSQL included, shares the
same cores, so these are what this machine sustains, not what PostgreSQL
alone could: they are inputs for a sizing note, not limits of the design.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench import database
from bench.context import Bench
from bench.latency import OUTBOX_APP
from bench.load import LoadResult, run_load
from bench.procs import start_gunicorn
from bench.smtp_sink import free_port
from bench.throughput import Drain, measure_drains

DEFAULT_BATCH_SIZE = 20  # rows per claim: the mailer's default MAILER_BATCH_SIZE
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
    drains: list[Drain]
    batch_size: int  # rows per claim statement the drains ran with

    def claims_per_second(self, drain: Drain) -> float:
        """Return claim statements per second, if every claim filled its batch.

        A lower bound: a claim that finds fewer due rows than the batch size
        still counts as one statement.
        """
        return drain.attempts_per_second / self.batch_size


def batch_size() -> int:
    """Return the batch size the mailers run with: the environment's or default."""
    value = os.environ.get("MAILER_BATCH_SIZE", "").strip()
    return int(value) if value else DEFAULT_BATCH_SIZE


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
    drains = measure_drains(bench, bench.sink, processes)
    return Capacity(signups, drains, batch_size())
