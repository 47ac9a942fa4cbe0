"""A burst of concurrent signups against one idle mailer: what it costs in ticks.

Issue #17: a burst of 10,000 signups must not cost 10,000 ticks, nor 10,000
empty claims. One mailer with default settings (its metrics port on) idles
against smtp-sink until its listener waits in ``outbox_waiters``, so wake-ups
are on. Then many producers commit the signups at once and the mailer drains
them. Its counters, read while it idles before the burst and again once it
idles after the drain, give the ticks and claim statements the burst cost,
poll ticks included. Two kinds of producer, one burst each:

- HTTP clients against the signup service itself, under the bench's gunicorn
  settings: the real signup path, as fast as these cores serve it;
- threads committing signup-shaped SQL transactions
  (:func:`bench.producers.commit_signup`): more producers, a denser burst.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from bench import database, pg
from bench.context import Bench
from bench.latency import OUTBOX_APP
from bench.load import run_load
from bench.mailer_metrics import WorkCounts, scrape, wait_serving
from bench.procs import Child, start_gunicorn, start_mailer
from bench.producers import commit_signup
from bench.sinks import sink_label
from bench.smtp_sink import free_port
from bench.throughput import wait_drained
from mailer_service.config import DEFAULT_POLL_INTERVAL
from mailer_service.listener import REGISTER_SETTLE

POLL_INTERVAL = DEFAULT_POLL_INTERVAL  # seconds; set explicitly, as shipped
IDLE_TIMEOUT = 60.0  # seconds for the mailer to wait in outbox_waiters
# Seconds to let pass once it waits there: the listener looks once more
# REGISTER_SETTLE after registering, and that tick belongs to the idle side.
IDLE_SETTLE = REGISTER_SETTLE + 0.2
POLL_SECONDS = 0.05  # how often outbox_waiters is read
WARMUP_PER_CLIENT = 2  # unmeasured signups per HTTP client, before the mailer
WAITING = "SELECT count(*) FROM outbox_waiters"
# On the database clock: the signups' first and last commits, and the last 250.
SPANS = (
    "SELECT extract(epoch FROM max(created_at) - min(created_at)),"
    " extract(epoch FROM max(sent_at) - min(created_at)) FROM outbox"
)

logger = logging.getLogger(__name__)

# Commits ``count`` signups; returns, once every producer has finished, the
# signups that failed by what went wrong (an HTTP status, an exception's name).
Produce = Callable[[int], Counter[str]]


@dataclass(frozen=True)
class Burst:
    """One burst: who committed the signups, and what the mailer did about them."""

    producers: str  # who committed them, as the table says
    concurrent: int  # producers at once: HTTP clients or SQL connections
    requested: int  # signups the producers were asked for
    signups: int  # outbox rows committed, each sent
    burst_seconds: float  # first signup's transaction to the last one's
    sent_seconds: float  # first signup's transaction to the last 250
    window_seconds: float  # between the two reads of the counters
    counts: WorkCounts  # from idle before the burst to idle after it
    poll_interval: float  # seconds between the mailer's polls
    sink: str  # the SMTP server the mailer delivered to
    failures: dict[str, int] = field(default_factory=dict)  # by what went wrong

    @property
    def signups_per_second(self) -> float:
        """Return the rate the signups were committed at."""
        return self.signups / self.burst_seconds if self.burst_seconds else 0.0

    def per_thousand(self, count: int) -> float:
        """Return ``count`` (ticks, claims) per 1,000 signups."""
        return 1000 * self.share(count)

    @property
    def poll_rings(self) -> int:
        """Return the most ticks the poll alone can have rung in the window."""
        return int(self.window_seconds / self.poll_interval) + 1

    def share(self, count: int) -> float:
        """Return ``count`` per signup."""
        return count / self.signups if self.signups else 0.0

    def fewer_than_signups(self, count: int) -> bool:
        """Tell whether ``count`` (ticks, empty claims) meets issue #17's target."""
        return count < self.signups


def _wait_idle(url: str, mailer: Child) -> None:
    """Wait until the mailer's listener waits in outbox_waiters, and IDLE_SETTLE."""
    deadline = time.monotonic() + IDLE_TIMEOUT
    with pg.connect(url) as connection:
        while True:
            if mailer.process.poll() is not None:
                raise RuntimeError(f"the mailer exited:\n{mailer.tail()}")
            row = connection.execute(WAITING).fetchone()
            if row and row[0]:
                time.sleep(IDLE_SETTLE)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the mailer never went idle:\n{mailer.tail()}")
            time.sleep(POLL_SECONDS)


def _spans(url: str) -> tuple[float, float]:
    """Return the burst's seconds and the seconds until its last 250."""
    with pg.connect(url) as connection:
        row = connection.execute(SPANS).fetchone()
    burst, sent = row if row else (None, None)
    return float(burst or 0.0), float(sent or 0.0)


def _measure(
    bench: Bench,
    tag: str,
    producers: str,
    concurrent: int,
    requested: int,
    produce: Produce,
) -> Burst:
    """Start an idle mailer, run ``produce``, and count the mailer's work."""
    database.truncate(bench.db_url)
    port = free_port()
    env = {
        **bench.idle_mailer_env(bench.sink),
        "MAILER_POLL_INTERVAL": str(POLL_INTERVAL),
        "MAILER_METRICS_PORT": str(port),
    }
    mailer = start_mailer(env, bench.log(f"burst-{tag}-mailer"))
    try:
        wait_serving(mailer, port)
        _wait_idle(bench.db_url, mailer)
        before, started = scrape(port), time.monotonic()
        failures = produce(requested)
        wait_drained(bench.db_url, [mailer])
        _wait_idle(bench.db_url, mailer)
        counts, window = scrape(port).since(before), time.monotonic() - started
    finally:
        mailer.stop()
    tally = pg.tally(bench.db_url)
    if tally.sent != tally.total:
        raise RuntimeError(f"burst {tag}: not every row was sent: {tally.statuses}")
    burst, sent = _spans(bench.db_url)
    return Burst(
        producers=producers,
        concurrent=concurrent,
        requested=requested,
        signups=tally.sent,
        burst_seconds=burst,
        sent_seconds=sent,
        window_seconds=window,
        counts=counts,
        poll_interval=POLL_INTERVAL,
        sink=sink_label(bench.sink),
        failures=dict(failures),
    )


def burst_over_http(bench: Bench, signups: int, clients: int) -> Burst:
    """POST ``signups`` signups to the signup service from ``clients`` threads."""
    port = free_port()
    web = start_gunicorn(
        OUTBOX_APP, port, bench.outbox_env(bench.sink), bench.log("burst-web")
    )
    try:
        # Before the mailer starts; _measure empties the tables first.
        run_load(
            port,
            [f"warm-burst-{i}@example.com" for i in range(WARMUP_PER_CLIENT * clients)],
            clients,
        )

        def post(count: int) -> Counter[str]:
            """POST ``count`` signups; return the answers other than 2xx."""
            emails = [f"burst-{i}@example.com" for i in range(count)]
            statuses = run_load(port, emails, clients).statuses
            return Counter(
                {
                    f"HTTP {status}" if isinstance(status, int) else status: n
                    for status, n in statuses.items()
                    if not (isinstance(status, int) and 200 <= status < 300)
                }
            )

        label = "signup service over HTTP (gunicorn)"
        return _measure(bench, "http", label, clients, signups, post)
    finally:
        web.stop()


def _commit_share(
    url: str, tag: str, count: int, failures: list[tuple[str, int]]
) -> None:
    """Commit ``count`` signup-shaped transactions on one connection.

    A database error ends this producer: it adds the error's name and the
    signups it had left to ``failures``.
    """
    done = 0
    try:
        with pg.connect(url) as connection:
            connection.autocommit = False
            for done in range(count):
                commit_signup(connection, f"{tag}-{done}")
            done = count
    except psycopg.Error as err:
        logger.exception("burst producer %s failed", tag)
        failures.append((type(err).__name__, count - done))  # one append: atomic


def burst_over_sql(bench: Bench, signups: int, producers: int) -> Burst:
    """Commit ``signups`` signup-shaped transactions from ``producers`` threads."""

    def commit(count: int) -> Counter[str]:
        """Share ``count`` signups among the threads; return those that failed."""
        shares = [
            count // producers + (i < count % producers) for i in range(producers)
        ]
        failures: list[tuple[str, int]] = []
        threads = [
            threading.Thread(
                target=_commit_share, args=(bench.db_url, f"sql-{i}", n, failures)
            )
            for i, n in enumerate(shares)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failed: Counter[str] = Counter()
        for name, left in failures:
            failed[name] += left
        return failed

    label = "signup-shaped SQL transactions"
    return _measure(bench, "sql", label, producers, signups, commit)


def measure_bursts(
    bench: Bench, signups: int, clients: int, producers: int
) -> list[Burst]:
    """Run one burst over HTTP and one over SQL, each against an idle mailer."""
    return [
        burst_over_http(bench, signups, clients),
        burst_over_sql(bench, signups, producers),
    ]
