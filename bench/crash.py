"""Mail lost when the web process is killed with SIGKILL while mail is in flight.

Both patterns get the same signups and the same ``kill -9`` of gunicorn's whole
process group right after the last answer. The count is taken on the SMTP
sink: the mails it accepted for the addresses that were answered 2xx.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import database
from bench.context import Bench
from bench.latency import OUTBOX_APP, THREAD_APP
from bench.load import run_load
from bench.procs import Child, start_gunicorn, start_mailer
from bench.smtp_sink import free_port

AFTERMATH_SECONDS = 3.0  # seconds to wait after the kill: 6x the SMTP delay
DRAIN_TIMEOUT_PER_MAIL = 2.0  # seconds per mail the mailer gets to drain


@dataclass(frozen=True)
class CrashResult:
    """What a kill -9 cost one pattern."""

    name: str
    answered: int  # signups answered 2xx before the kill
    delivered: int  # of those, addresses the SMTP sink received mail for
    duplicates: int  # extra copies the sink received for those addresses
    how: str  # what happened after the kill

    @property
    def lost(self) -> int:
        """Return the answered signups whose mail never arrived."""
        return self.answered - self.delivered


def _tally(bench: Bench, name: str, answered: list[str], how: str) -> CrashResult:
    """Count on the slow sink what arrived for the ``answered`` addresses."""
    received = bench.slow.recipients()
    delivered = sum(1 for email in answered if received[email])
    duplicates = sum(received[email] - 1 for email in answered if received[email])
    bench.slow.reset()
    return CrashResult(name, len(answered), delivered, duplicates, how)


def _sign_up_then_kill(
    bench: Bench, app: str, env: dict[str, str], name: str
) -> list[str]:
    """Serve ``app``, fire the signups, kill -9 it; return the answered addresses."""
    port = free_port()
    web = start_gunicorn(app, port, env, bench.log(f"crash-{name}"))
    try:
        emails = [f"crash-{name}-{i}@example.com" for i in range(bench.kill_signups)]
        result = run_load(port, emails, bench.concurrency)
    finally:
        web.kill_group()  # right after the last answer: the crash under test
    return result.answered


def kill_thread_app(bench: Bench) -> CrashResult:
    """Sign up against the thread pattern, kill -9 it, and count what arrived."""
    answered = _sign_up_then_kill(
        bench, THREAD_APP, bench.mail_env(bench.slow), "thread"
    )
    time.sleep(AFTERMATH_SECONDS)
    bench.slow.wait_quiet(quiet=1.0, timeout=30.0)
    return _tally(
        bench,
        "thread",
        answered,
        f"waited {AFTERMATH_SECONDS:g} s; no copy of them survives",
    )


def kill_outbox_app(bench: Bench) -> CrashResult:
    """Sign up against the signup service, kill -9 it, then let a mailer drain."""
    database.truncate(bench.db_url)
    answered = _sign_up_then_kill(
        bench, OUTBOX_APP, bench.outbox_env(bench.slow), "outbox"
    )
    mailer: Child = start_mailer(
        bench.mailer_env(bench.slow), bench.log("crash-outbox-mailer")
    )
    try:
        timeout = 60.0 + DRAIN_TIMEOUT_PER_MAIL * len(answered)
        bench.slow.wait_for(len(answered), timeout=timeout)
        time.sleep(AFTERMATH_SECONDS)  # a duplicate, if any, would land now
    finally:
        mailer.stop()
    pending = database.count_pending(bench.db_url)
    how = f"ran the mailer until the outbox drained ({pending} rows left)"
    return _tally(bench, "outbox", answered, how)


def kill_both(bench: Bench) -> list[CrashResult]:
    """Run the crash test on (b) the thread pattern and (c) the outbox."""
    return [kill_thread_app(bench), kill_outbox_app(bench)]
