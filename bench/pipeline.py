"""SMTP concurrency without database connections: one mailer, a slow relay.

postfix's smtp-sink waits ``RELAY_WAIT`` seconds before answering each DATA
(``-w``), a slow relay at no CPU cost. Its timers tick in whole seconds, so a
send takes between one and two seconds; the mean, from the attempts'
recorded start and end, is the latency. One mailer with MAILER_CONCURRENCY = c
then sends at most c ÷ latency messages/s (Little's law): that is the
ceiling each drain is compared with. While it drains, the PostgreSQL client
backends other than ours are sampled: the pipeline's promise is three
(claimer, completer, listener) at any concurrency.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from bench import database, pg
from bench.context import Bench
from bench.messages import rate
from bench.procs import Child, start_mailer
from bench.sink_process import SinkProcess
from bench.sinks import PostfixSink, Sink, find_smtp_sink
from bench.throughput import wait_connected, wait_drained
from mailer_service.listener import APPLICATION_NAME as LISTENER

RELAY_WAIT = 1  # seconds smtp-sink waits before answering DATA
AIOSMTPD_WAIT = 0.1  # seconds the aiosmtpd relay (own process) waits after DATA
WAVES = 10  # rows per SMTP worker: each drain is about this many sends long
STEADY = (0.1, 0.9)  # the steady state: from the 10th to the 90th percentile 250
SAMPLE_SECONDS = 0.05  # how often the backends are counted
APPLICATION = "outbox-bench-pipeline"  # the mailer's application_name
# From the rows' insert to the last 250: the first wave's sends count too.
DRAIN_SPAN = "SELECT extract(epoch FROM max(sent_at) - min(created_at)) FROM outbox"
MEAN_SEND = "SELECT avg(extract(epoch FROM ended_at - started_at)) FROM outbox_attempts"
# When the 10th and the 90th percentile message was accepted: the rate between
# them leaves out the ramp (every SMTP connection opening) and the last wave.
PERCENTILES = (
    "SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at)),"
    " percentile_cont(%s) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at))"
    " FROM outbox"
)
# The listener names itself (LISTENER); the claimer and completer carry ours.
BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database()"
    " AND application_name IN (%s, %s)"
)


@dataclass(frozen=True)
class PipelineDrain:
    """One mailer at one concurrency against a slow relay."""

    server: str  # which SMTP server, as the table names it
    concurrency: int
    rows: int
    span: float  # seconds from the rows' insert to the last sent_at
    attempts: int  # delivery attempts: more than rows when a send timed out
    peak_backends: int  # most PostgreSQL client backends the mailer held at once
    latency: float  # mean seconds of one send, from outbox_attempts
    steady_span: float = 0.0  # seconds between the STEADY percentiles' 250s

    @property
    def per_second(self) -> float:
        """Return sent rows per second, over the whole drain."""
        return rate(self.rows, self.span)

    @property
    def steady_per_second(self) -> float:
        """Return sent rows per second between the STEADY percentiles."""
        low, high = STEADY
        return rate(self.rows * (high - low), self.steady_span)

    @property
    def nominal(self) -> float:
        """Return concurrency ÷ the server's nominal wait: issue #17's yardstick."""
        wait = RELAY_WAIT if self.server.startswith("smtp-sink") else AIOSMTPD_WAIT
        return rate(self.concurrency, wait)

    @property
    def ceiling(self) -> float:
        """Return concurrency ÷ the mean send latency: the most it could send."""
        return rate(self.concurrency, self.latency)


def _named(url: str) -> str:
    """Return ``url`` with the mailer's application_name, to tell its backends."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}application_name={APPLICATION}"


def _sample_backends(url: str, done: threading.Event, peak: list[int]) -> None:
    """Keep the highest count of the mailer's backends in ``peak[0]``."""
    with pg.connect(url) as connection:
        while not done.is_set():
            row = connection.execute(BACKENDS, (APPLICATION, LISTENER)).fetchone()
            peak[0] = max(peak[0], int(row[0]) if row else 0)
            done.wait(SAMPLE_SECONDS)


def _drain(bench: Bench, sink: Sink, server: str, concurrency: int) -> PipelineDrain:
    """Drain WAVES x ``concurrency`` signups with one mailer; count its backends."""
    rows = WAVES * concurrency
    database.truncate(bench.db_url)
    env = {
        **bench.mailer_env(sink),
        "MAILER_CONCURRENCY": str(concurrency),
        "MAILER_BATCH_SIZE": str(min(concurrency, 256)),
        "MAIL_TIMEOUT": "10",
        "MAILER_LEASE_SECONDS": "60",
        "MAILER_BACKOFF_SECONDS": "1",
        "DATABASE_URL": _named(bench.db_url),
    }
    mailer: Child = start_mailer(env, bench.log(f"pipeline-{concurrency}"))
    done, peak = threading.Event(), [0]
    sampler = threading.Thread(
        target=_sample_backends, args=(bench.db_url, done, peak), daemon=True
    )
    try:
        wait_connected(bench.db_url, [mailer])
        sampler.start()
        database.insert_signups(
            bench.db_url, [f"pipe-{concurrency}-{i}@example.com" for i in range(rows)]
        )
        wait_drained(bench.db_url, [mailer])
    finally:
        done.set()
        mailer.stop()
    tally = pg.tally(bench.db_url)
    if tally.sent != rows:
        raise RuntimeError(f"pipeline {concurrency}: not all sent: {tally.statuses}")
    with pg.connect(bench.db_url) as connection:
        latency = _seconds(connection.execute(MEAN_SEND).fetchone())
        span = _seconds(connection.execute(DRAIN_SPAN).fetchone())
        low, high = connection.execute(PERCENTILES, STEADY).fetchone() or (0, 0)
    return PipelineDrain(
        server,
        concurrency,
        rows,
        span,
        tally.attempts,
        peak[0],
        latency,
        float(high or 0) - float(low or 0),
    )


def _seconds(row: tuple | None) -> float:
    """Return the one value of ``row`` as seconds (0 when NULL)."""
    return float(row[0]) if row and row[0] is not None else 0.0


def measure_pipeline(
    bench: Bench, concurrencies: list[int], aiosmtpd_concurrencies: list[int]
) -> list[PipelineDrain]:
    """Drain once per concurrency against smtp-sink -w 1, then against aiosmtpd."""
    binary = find_smtp_sink()
    if binary is None:
        raise RuntimeError("the pipeline phase needs postfix's smtp-sink")
    label = f"smtp-sink `-w {RELAY_WAIT}`"
    with PostfixSink(binary, bench.logs, data_wait=RELAY_WAIT) as sink:
        drains = [_drain(bench, sink, label, c) for c in concurrencies]
    label = f"aiosmtpd, {AIOSMTPD_WAIT * 1000:g} ms at end of DATA"
    # Its own process: in ours, the backend sampler would hold its loop back.
    log = bench.log("pipeline-aiosmtpd")
    with SinkProcess(data_delay=AIOSMTPD_WAIT, log=log) as relay:
        drains += [_drain(bench, relay, label, c) for c in aiosmtpd_concurrencies]
    return drains


def pipeline_section(drains: list[PipelineDrain]) -> list[str]:
    """Return the Markdown section of the pipeline drains."""
    lines = [
        "## SMTP concurrency without database connections",
        "",
        f"One mailer against postfix's smtp-sink answering each DATA after"
        f" {RELAY_WAIT} s (`-w {RELAY_WAIT}`), then against aiosmtpd answering"
        f" {AIOSMTPD_WAIT * 1000:g} ms after the end of DATA (Python, in a process"
        f" of its own, on the same 2 cores), {WAVES} rows per SMTP worker. The"
        " ceiling is `MAILER_CONCURRENCY ÷ latency` (Little's law), the latency"
        " being the mean send time recorded in `outbox_attempts` (smtp-sink's"
        " timers tick in whole seconds: a send takes 1 to 2 s); the nominal"
        " rate is `MAILER_CONCURRENCY ÷` the server's set wait (1 s, 100 ms),"
        " issue #17's yardstick. msg/s is over the whole drain, from the rows'"
        " insert to the last 250 (the ramp, with every SMTP connection opening,"
        " and the last wave included); steady msg/s is between the 10th and the"
        " 90th percentile 250, and the shares are of that. Backends are the"
        " PostgreSQL backends of the mailer (its `application_name`, and its"
        " listener's), sampled every"
        f" {SAMPLE_SECONDS * 1000:g} ms.",
        "",
        "| server | `MAILER_CONCURRENCY` | rows | mean send s | msg/s"
        " | steady msg/s | nominal msg/s | share of nominal | ceiling msg/s"
        " | share of ceiling"
        " | sends retried after a timeout | peak PostgreSQL backends |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in drains:
        steady = d.steady_per_second
        lines.append(
            f"| {d.server} | {d.concurrency} | {d.rows:,} | {d.latency:.2f} |"
            f" {d.per_second:,.0f} | {steady:,.0f} | {d.nominal:,.0f} |"
            f" {_share(steady, d.nominal)} | {d.ceiling:,.0f} |"
            f" {_share(steady, d.ceiling)} |"
            f" {d.attempts - d.rows:,} | {d.peak_backends} |"
        )
    return [*lines, ""]


def _share(part: float, whole: float) -> str:
    """Return ``part`` as a percentage of ``whole``, or a dash without one."""
    return f"{part / whole:.0%}" if whole else "-"
