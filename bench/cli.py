"""``python -m bench.run``'s command line: every knob, sized for 2 shared cores."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from bench import database
from bench.procs import ROOT
from mailer_service.config import DEFAULT_CONCURRENCY

# The phases ``--only`` can run alone (bench.run.ALONE).
ONLY = ("burst", "capacity", "latency")


def int_list(value: str) -> list[int]:
    """Parse ``1,2,4`` into ``[1, 2, 4]``: positive, in the order given."""
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {value!r}") from None
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers, got {value!r}")
    return numbers


def claim_param(value: str) -> tuple[str, object]:
    """Parse ``NAME=VALUE`` for the claim statement; numbers become numbers."""
    name, sep, raw = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {value!r}")
    for kind in (int, float):
        try:
            return name.strip(), kind(raw)
        except ValueError:
            continue
    return name.strip(), raw


@dataclass(frozen=True)
class Concurrency:
    """MAILER_CONCURRENCY for this run: what to set, how to report it, its value."""

    env: dict[str, str]  # added to every mailer's environment
    label: str  # for the report: a number, or "default"
    effective: int  # connections per mailer the relay target assumes


def mailer_concurrency(arg: int | None) -> Concurrency:
    """Resolve ``--mailer-concurrency``, else the environment, else the default."""
    if arg is not None:
        return Concurrency({"MAILER_CONCURRENCY": str(arg)}, str(arg), arg)
    inherited = os.environ.get("MAILER_CONCURRENCY", "").strip()
    if inherited:
        # Reaches the mailers with the rest of our environment.
        return Concurrency({}, f"{inherited} (from the environment)", int(inherited))
    # Unset: the mailer's own default.
    return Concurrency({}, f"default ({DEFAULT_CONCURRENCY})", DEFAULT_CONCURRENCY)


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m bench.run``."""
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Run every benchmark phase on a fresh PostgreSQL database,"
        " print the results as Markdown, rewrite BENCHMARKS.md and the charts.",
    )
    p.add_argument(
        "--admin-url",
        default=database.DEFAULT_ADMIN_URL,
        help="PostgreSQL URL allowed to CREATE and DROP DATABASE",
    )
    seed = p.add_argument_group("seed patterns against the outbox")
    seed.add_argument("--requests", type=int, default=300, help="per pattern")
    seed.add_argument("--concurrency", type=int, default=8, help="client threads")
    seed.add_argument(
        "--kill-signups", type=int, default=50, help="signups in flight at kill -9"
    )
    mailer = p.add_argument_group("mailer against its ceilings")
    mailer.add_argument(
        "--mailer-rows",
        type=int,
        default=3000,
        help="outbox rows per drain, and messages per ceiling loop, to smtp-sink",
    )
    mailer.add_argument(
        "--mailer-processes",
        type=int_list,
        default=[1, 2, 4],
        help="mailer process counts to drain with, e.g. 1,2,4",
    )
    mailer.add_argument(
        "--mailer-concurrency",
        type=int,
        default=None,
        help="set MAILER_CONCURRENCY for every mailer (default: leave it unset)",
    )
    mailer.add_argument(
        "--pipeline-concurrency",
        type=int_list,
        default=[64, 256, 512],
        help="MAILER_CONCURRENCY values of the slow-relay drains (smtp-sink -w 1)",
    )
    mailer.add_argument(
        "--aiosmtpd-concurrency",
        type=int_list,
        default=[16, 64],
        help="MAILER_CONCURRENCY values of the drains against aiosmtpd at 100 ms",
    )
    mailer.add_argument(
        "--relay-rows",
        type=int,
        default=200,
        help="rows drained, and messages per ceiling loop, to the 50 ms relay",
    )
    mailer.add_argument(
        "--attachment-rows",
        type=int,
        default=1000,
        help="rows per drain, plain and with a 100 KB attachment, to smtp-sink",
    )
    latency = p.add_argument_group("commit to SMTP 250, idle mailer")
    latency.add_argument("--latency-rows", type=int, default=200)
    latency.add_argument(
        "--latency-budget",
        type=float,
        default=90.0,
        help="seconds; the phase stops early with the rows it has",
    )
    claim = p.add_argument_group("claim cost against history")
    claim.add_argument("--claim-runs", type=int, default=2000)
    claim.add_argument("--claim-pending", type=int, default=1000)
    claim.add_argument("--claim-history", type=int, default=1_000_000)
    claim.add_argument(
        "--claim-param",
        type=claim_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a claim_due parameter the benchmark does not know",
    )
    p.add_argument(
        "--floor-requests", type=int, default=300, help="sequential, per app"
    )
    burst = p.add_argument_group("a burst of signups against an idle mailer")
    burst.add_argument(
        "--burst-signups", type=int, default=10_000, help="signups per burst"
    )
    burst.add_argument(
        "--burst-clients",
        type=int,
        default=16,
        help="HTTP client threads of the burst through the signup service",
    )
    burst.add_argument(
        "--burst-producers",
        type=int,
        default=32,
        help="threads of the burst of signup-shaped SQL transactions",
    )
    capacity = p.add_argument_group("capacity (off by default)")
    capacity.add_argument("--capacity", action="store_true", help="run this phase")
    capacity.add_argument(
        "--capacity-requests",
        type=int,
        default=1000,
        help="closed-loop signups per gunicorn worker count",
    )
    capacity.add_argument("--capacity-workers", type=int_list, default=[1, 2])
    capacity.add_argument("--capacity-processes", type=int_list, default=[1, 2, 4, 8])
    p.add_argument(
        "--only",
        choices=ONLY,
        help="run this phase alone and print its section; BENCHMARKS.md is kept",
    )
    p.add_argument(
        "--output", type=Path, default=ROOT / "BENCHMARKS.md", help="file to rewrite"
    )
    p.add_argument(
        "--charts-dir",
        type=Path,
        default=ROOT / "docs" / "bench",
        help="where the PNG charts go",
    )
    return p
