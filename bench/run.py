"""``make bench``: the seed's two patterns and the outbox, side by side in one run.

Run ``python -m bench.run --help`` for the knobs. It creates and drops its own
PostgreSQL database, prints the results as Markdown and rewrites BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from bench import crash, database, latency, throughput
from bench.context import Bench
from bench.procs import ROOT
from bench.report import Results, render
from bench.smtp_sink import SmtpSink

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
SLOW_SMTP_SECONDS = 0.5  # the slow sink's delay before answering MAIL FROM


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line; every knob has a default sized for 2 cores."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--admin-url",
        default=database.DEFAULT_ADMIN_URL,
        help="PostgreSQL URL allowed to CREATE and DROP DATABASE",
    )
    parser.add_argument("--requests", type=int, default=300, help="per pattern")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument(
        "--kill-signups", type=int, default=50, help="signups in flight at kill -9"
    )
    parser.add_argument(
        "--mailer-rows", type=int, default=1000, help="outbox rows to drain"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "BENCHMARKS.md", help="file to rewrite"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace, command: str) -> Results:
    """Run every phase on a fresh database and return the results."""
    with (
        tempfile.TemporaryDirectory(prefix="outbox-bench-") as logs,
        database.fresh_database(args.admin_url) as db_url,
        SmtpSink(delay=SLOW_SMTP_SECONDS) as slow,
        SmtpSink() as fast,
    ):
        bench = Bench(
            db_url=db_url,
            slow=slow,
            fast=fast,
            logs=Path(logs),
            requests=args.requests,
            concurrency=args.concurrency,
            kill_signups=args.kill_signups,
            mailer_rows=args.mailer_rows,
        )
        print("measuring signup latency ...", file=sys.stderr)
        phases = latency.measure_all(bench)
        print("killing web processes with mail in flight ...", file=sys.stderr)
        crashes = crash.kill_both(bench)
        print("measuring mailer throughput ...", file=sys.stderr)
        rates = throughput.measure_rates(bench)
        return Results(
            command=command,
            postgres=database.server_version(args.admin_url),
            smtp_delay_ms=SLOW_SMTP_SECONDS * 1000,
            concurrency=args.concurrency,
            phases=phases,
            crashes=crashes,
            rates=rates,
        )


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    """Leave through SystemExit, so every cleanup in progress runs."""
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the Markdown and write it to ``--output``."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # Configured first, so signup_service.create_app() (used to fill the outbox)
    # does not turn on INFO, which would log every SMTP command the sinks see.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    # The children run in their own sessions, out of reach of a signal to ours:
    # turn SIGTERM into SystemExit so the finally blocks stop them and drop the
    # database (Ctrl-C already raises KeyboardInterrupt).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    command = shlex.join(["python", "-m", "bench.run", *argv])
    markdown = render(run(args, command))
    print(markdown)
    args.output.write_text(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
