"""Signup latency and throughput: sync send, thread per email, and the outbox."""

from __future__ import annotations

from dataclasses import dataclass

from bench import database
from bench.context import Bench
from bench.load import LoadResult, run_load
from bench.procs import Child, start_gunicorn, start_mailer
from bench.sinks import RecordingSink
from bench.smtp_sink import free_port

SYNC_APP = "bench.seed_apps:create_sync_app()"
THREAD_APP = "bench.seed_apps:create_thread_app()"
OUTBOX_APP = "signup_service:create_app()"

WARMUP_PER_CLIENT = 2  # unmeasured signups per client thread before measuring
DELIVERY_TIMEOUT = 120.0  # seconds the thread pattern gets to finish its mails


@dataclass(frozen=True)
class Phase:
    """One measured pattern: what was served, against which SMTP, and the load."""

    name: str
    smtp: str
    result: LoadResult


def _emails(prefix: str, count: int) -> list[str]:
    """Return ``count`` distinct signup addresses for one phase."""
    return [f"{prefix}-{i}@example.com" for i in range(count)]


def _measure(bench: Bench, port: int, prefix: str) -> LoadResult:
    """Warm the server up, then run the measured load against it."""
    run_load(
        port,
        _emails(f"warm-{prefix}", WARMUP_PER_CLIENT * bench.concurrency),
        bench.concurrency,
    )
    return run_load(port, _emails(prefix, bench.requests), bench.concurrency)


def measure_seed(bench: Bench, name: str, app: str) -> Phase:
    """Serve a seed pattern against the slow SMTP sink and measure its signups."""
    port = free_port()
    web = start_gunicorn(app, port, bench.mail_env(bench.slow), bench.log(name))
    try:
        result = _measure(bench, port, name)
        # Let the thread pattern's mails land before its workers are stopped,
        # so they do not spill into the next phase.
        bench.slow.wait_quiet(quiet=2.0, timeout=DELIVERY_TIMEOUT)
    finally:
        web.stop()
    bench.slow.reset()
    return Phase(name, _smtp_label(bench.slow), result)


def measure_outbox(bench: Bench, sink: RecordingSink) -> Phase:
    """Serve the signup service, with a mailer delivering to ``sink`` meanwhile."""
    name = f"outbox-{'slow' if sink.delay else 'fast'}"
    database.truncate(bench.db_url)
    port = free_port()
    children: list[Child] = []
    try:
        children.append(
            start_gunicorn(OUTBOX_APP, port, bench.outbox_env(sink), bench.log(name))
        )
        children.append(
            start_mailer(bench.mailer_env(sink), bench.log(f"{name}-mailer"))
        )
        result = _measure(bench, port, name)
    finally:
        for child in children:
            child.stop()
    sink.reset()
    return Phase(name, _smtp_label(sink), result)


def _smtp_label(sink: RecordingSink) -> str:
    """Describe the sink's latency for the table."""
    return f"{sink.delay * 1000:.0f} ms" if sink.delay else "instant"


def measure_all(bench: Bench) -> list[Phase]:
    """Measure (a) sync, (b) thread, (c) outbox against slow and fast SMTP."""
    return [
        measure_seed(bench, "sync", SYNC_APP),
        measure_seed(bench, "thread", THREAD_APP),
        measure_outbox(bench, bench.slow),
        measure_outbox(bench, bench.fast),
    ]
