"""``make bench``: seed patterns, the outbox and the mailer's ceilings, in one run.

Run ``python -m bench.run --help`` for the knobs. It creates and drops its own
PostgreSQL databases, prints the results as Markdown, rewrites BENCHMARKS.md
and the charts it links to. ``--only PHASE`` runs one phase and prints its
section, leaving BENCHMARKS.md alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType

from bench import crash, database, latency, plots, throughput
from bench.attachments import measure_attachment_cost
from bench.burst import Burst, measure_bursts
from bench.burst_report import burst_section
from bench.capacity import measure_capacity
from bench.claim_cost import measure_claim_cost
from bench.cli import mailer_concurrency, parser
from bench.commit_latency import measure_commit_latency
from bench.context import Bench
from bench.pipeline import measure_pipeline
from bench.producers import measure_producers
from bench.report import Results, latency_section, render
from bench.report_sections import capacity_section
from bench.signup_floor import compare_with_floor
from bench.sink_process import SinkProcess
from bench.sinks import open_fast_sink, relay_sink

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
SLOW_SMTP_SECONDS = 0.5  # the slow sink's delay before answering MAIL FROM

_STARTED = time.monotonic()


def progress(what: str) -> None:
    """Say on stderr which phase starts, and how long the run has taken so far."""
    print(f"[{time.monotonic() - _STARTED:6.0f} s] {what} ...", file=sys.stderr)


def _charts(results: Results, folder: Path, output: Path) -> dict[str, str]:
    """Write the charts; return their links relative to ``output``."""
    capacity = results.capacity.drains if results.capacity else None
    try:
        throughput_png, latency_png = plots.write_plots(
            results.mailers, results.latency, capacity, folder
        )
    except ImportError as err:
        print(f"note: no charts, matplotlib is missing ({err})", file=sys.stderr)
        return {}
    return {
        "throughput": os.path.relpath(throughput_png, output.parent),
        "latency": os.path.relpath(latency_png, output.parent),
    }


@contextmanager
def open_bench(args: argparse.Namespace) -> Iterator[Bench]:
    """Create the database and start the SMTP sinks every phase shares.

    The slow and fast aiosmtpd sinks run in processes of their own, like the
    relay: the latency phase's client threads would otherwise hold their event
    loops back and add to the very latency they measure.
    """
    concurrency = mailer_concurrency(args.mailer_concurrency)
    with (
        tempfile.TemporaryDirectory(prefix="outbox-bench-") as logs,
        database.fresh_database(args.admin_url) as db_url,
        SinkProcess(delay=SLOW_SMTP_SECONDS, log=Path(logs) / "slow-sink.log") as slow,
        SinkProcess(log=Path(logs) / "fast-sink.log") as fast,
        open_fast_sink(Path(logs)) as sink,
        relay_sink() as relay,
    ):
        yield Bench(
            db_url=db_url,
            slow=slow,
            fast=fast,
            logs=Path(logs),
            requests=args.requests,
            concurrency=args.concurrency,
            kill_signups=args.kill_signups,
            mailer_rows=args.mailer_rows,
            sink=sink,
            relay=relay,
            relay_rows=args.relay_rows,
            mailer_extra=concurrency.env,
        )


def _bursts(bench: Bench, args: argparse.Namespace) -> list[Burst]:
    """Run the burst phase with the command line's sizes."""
    progress(f"bursting {args.burst_signups:,} signups at an idle mailer, twice")
    return measure_bursts(
        bench, args.burst_signups, args.burst_clients, args.burst_producers
    )


def _latency_alone(bench: Bench, args: argparse.Namespace) -> list[str]:
    """Run the seed patterns' and the outbox's latency phase; return its tables."""
    progress("measuring signup latency of the seed patterns and the outbox")
    return latency_section(latency.measure_all(bench), SLOW_SMTP_SECONDS * 1000)


def _burst_alone(bench: Bench, args: argparse.Namespace) -> list[str]:
    """Run the burst phase; return its section."""
    return burst_section(_bursts(bench, args))


def _capacity_alone(bench: Bench, args: argparse.Namespace) -> list[str]:
    """Run the capacity phase (``--capacity`` need not be given); return its section."""
    capacity = measure_capacity(
        bench, args.capacity_requests, args.capacity_workers, args.capacity_processes
    )
    return capacity_section(capacity, args.concurrency)


# What ``--only`` runs: one phase, returning its Markdown section.
ALONE: dict[str, Callable[[Bench, argparse.Namespace], list[str]]] = {
    "burst": _burst_alone,
    "capacity": _capacity_alone,
    "latency": _latency_alone,
}


def run(args: argparse.Namespace, command: str) -> Results:
    """Run every phase on fresh databases and return the results."""
    concurrency = mailer_concurrency(args.mailer_concurrency)
    with open_bench(args) as bench:
        progress("measuring signup latency of the seed patterns and the outbox")
        phases = latency.measure_all(bench)
        progress("killing web processes with mail in flight")
        crashes = crash.kill_both(bench)
        progress("measuring the ceilings and the mailer drains")
        mailers = throughput.measure_mailer_figures(
            bench, args.mailer_processes, concurrency.label, concurrency.effective
        )
        progress("measuring producer transactions/s with wake-up on and off")
        producers = measure_producers(bench)
        bursts = _bursts(bench, args)
        progress("measuring SMTP concurrency against a 1 s relay, and backends")
        pipeline = measure_pipeline(
            bench, args.pipeline_concurrency, args.aiosmtpd_concurrency
        )
        progress("measuring what a 100 KB attachment costs one mailer")
        attachments = measure_attachment_cost(bench, args.attachment_rows)
        progress("measuring commit-to-250 latency of an idle mailer")
        commit = measure_commit_latency(bench, args.latency_rows, args.latency_budget)
        progress("timing sequential signups against the floor app")
        floor = compare_with_floor(bench, args.floor_requests)
        progress(f"timing the claim with {args.claim_history:,} sent rows")
        claim = measure_claim_cost(
            args.admin_url,
            args.claim_runs,
            args.claim_pending,
            args.claim_history,
            dict(args.claim_param),
        )
        capacity = None
        if args.capacity:
            progress("measuring capacity")
            capacity = measure_capacity(
                bench,
                args.capacity_requests,
                args.capacity_workers,
                args.capacity_processes,
            )
        return Results(
            command=command,
            postgres=database.server_version(args.admin_url),
            smtp_delay_ms=SLOW_SMTP_SECONDS * 1000,
            concurrency=args.concurrency,
            phases=phases,
            crashes=crashes,
            mailers=mailers,
            latency=commit,
            claim=claim,
            floor=floor,
            attachments=attachments,
            capacity=capacity,
            pipeline=pipeline,
            producers=producers,
            bursts=bursts,
        )


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    """Leave through SystemExit, so every cleanup in progress runs."""
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the Markdown and write it to ``--output``."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    # Configured first, so signup_service.create_app() (used to fill the outbox)
    # does not turn on INFO, which would log every SMTP command the sinks see.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    # The children run in their own sessions, out of reach of a signal to ours:
    # turn SIGTERM into SystemExit so the finally blocks stop them and drop the
    # database (Ctrl-C already raises KeyboardInterrupt).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.only:
        with open_bench(args) as bench:
            print("\n".join(ALONE[args.only](bench, args)))
        progress(f"done; {args.output.name} was left alone (--only)")
        return 0
    command = shlex.join(["python", "-m", "bench.run", *argv])
    results = run(args, command)
    progress("writing the report and the charts")
    charts = _charts(results, args.charts_dir, args.output)
    markdown = render(replace(results, charts=charts))
    print(markdown)
    args.output.write_text(markdown)
    progress("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
