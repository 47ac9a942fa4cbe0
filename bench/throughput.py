"""Mailer delivery throughput, 1 and 2 processes, against a raw smtplib loop.

All three send the same messages to the same instant SMTP sink. The rate is
taken on the sink, from the first accepted message to the last, so process
start-up is not counted against anyone.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from bench import database
from bench.context import Bench
from bench.procs import ROOT, Child, start_mailer
from bench.raw_send import write_messages
from bench.smtp_sink import Received

DRAIN_TIMEOUT = 600.0  # seconds; far more than a drain takes on a busy machine


@dataclass(frozen=True)
class Rate:
    """Messages per second for one sender set-up."""

    name: str
    messages: int  # accepted by the sink
    per_second: float


def _drain_with_mailers(bench: Bench, processes: int) -> tuple[Rate, list[Received]]:
    """Fill the outbox, start ``processes`` mailers, and time the drain on the sink."""
    database.truncate(bench.db_url)
    emails = [f"drain-{i}@example.com" for i in range(bench.mailer_rows)]
    database.insert_signups(bench.db_url, emails)
    bench.fast.reset()
    mailers: list[Child] = []
    try:
        for n in range(processes):
            log = bench.log(f"throughput-{processes}-mailer-{n}")
            mailers.append(start_mailer(bench.mailer_env(bench.fast), log))
        if not bench.fast.wait_for(bench.mailer_rows, timeout=DRAIN_TIMEOUT):
            raise RuntimeError(f"{processes} mailer(s) did not drain the outbox")
    finally:
        for mailer in mailers:
            mailer.stop()
    received = bench.fast.received()
    name = f"{processes} mailer process{'es' if processes > 1 else ''}"
    rate = Rate(name, len(received), bench.fast.delivery_rate())
    return rate, received


def _raw_loop(bench: Bench, messages: list[Received]) -> Rate:
    """Resend the exact bytes the mailer delivered, from a plain smtplib loop."""
    path = bench.logs / "raw-messages.jsonl"
    write_messages(
        path, [(m.mail_from, list(m.recipients), m.content or b"") for m in messages]
    )
    bench.fast.reset()
    with bench.log("raw-smtplib").open("ab") as out:
        subprocess.run(
            [sys.executable, "-m", "bench.raw_send", str(bench.fast.port), str(path)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=DRAIN_TIMEOUT,
        )
    rate = Rate(
        "raw smtplib loop, one connection",
        bench.fast.count(),
        bench.fast.delivery_rate(),
    )
    bench.fast.reset()
    return rate


def measure_rates(bench: Bench) -> list[Rate]:
    """Return the rates of 1 mailer, 2 mailers and the raw loop, in that order."""
    bench.fast.keep_content = True
    try:
        one, delivered = _drain_with_mailers(bench, 1)
    finally:
        bench.fast.keep_content = False
    two, _ = _drain_with_mailers(bench, 2)
    return [one, two, _raw_loop(bench, delivered)]
