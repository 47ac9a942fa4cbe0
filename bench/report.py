"""Render the results as the Markdown of BENCHMARKS.md."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import report_sections, targets
from bench.attachments import AttachmentCost
from bench.burst import Burst
from bench.burst_report import burst_section
from bench.capacity import Capacity
from bench.ceilings import RAW
from bench.claim_cost import ClaimCost
from bench.commit_latency import CommitLatency
from bench.crash import CrashResult
from bench.latency import Phase
from bench.load import LoadResult
from bench.pipeline import PipelineDrain, pipeline_section
from bench.procs import GUNICORN_SETTINGS
from bench.producers import ProducerFigures, producers_section
from bench.signup_floor import FloorComparison
from bench.throughput import MailerFigures

LABELS = {
    "sync": "(a) sync: `mail.send(msg)` in the request",
    "thread": "(b) thread: `Thread(...).start()` per email",
    "outbox-slow": "(c) outbox (mailer delivering meanwhile)",
    "outbox-fast": "(c) outbox (mailer delivering meanwhile)",
}
CRASH_LABELS = {"thread": "(b) thread per email", "outbox": "(c) outbox"}


@dataclass(frozen=True)
class Results:
    """Everything one run measured, plus how and where it ran."""

    command: str
    postgres: str
    smtp_delay_ms: float
    concurrency: int
    phases: list[Phase]
    crashes: list[CrashResult]
    mailers: MailerFigures
    latency: CommitLatency
    claim: ClaimCost
    floor: FloorComparison
    attachments: AttachmentCost
    capacity: Capacity | None = None  # only with --capacity
    pipeline: list[PipelineDrain] = field(default_factory=list)
    producers: ProducerFigures | None = None
    bursts: list[Burst] = field(default_factory=list)
    # Chart links relative to the Markdown file, by name; empty without matplotlib.
    charts: dict[str, str] = field(default_factory=dict)


def cpu_description() -> str:
    """Return the CPU model and the number of logical CPUs from /proc/cpuinfo."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    models = [
        line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")
    ]
    if not models:
        return "unknown CPU"
    return f"{models[0]} x {len(models)}"


def _ratio(numerator: float, denominator: float) -> str:
    """Format a ratio as ``12.3x``, or n/a when it is undefined."""
    return f"{numerator / denominator:.1f}x" if denominator else "n/a"


def _latency_table(phases: list[Phase]) -> list[str]:
    """Return the latency table's lines."""
    rows = [
        "| pattern | SMTP server | signups (2xx) | errors | p50 ms | p95 ms | p99 ms"
        " | signups/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in phases:
        r = phase.result
        rows.append(
            f"| {LABELS[phase.name]} | {phase.smtp} | {r.ok} | {r.errors}"
            f" | {r.quantile_ms(50):.1f} | {r.quantile_ms(95):.1f}"
            f" | {r.quantile_ms(99):.1f} | {r.throughput:.1f} |"
        )
    return rows


def _ratio_row(label: str, other: LoadResult, outbox: LoadResult) -> str:
    """Return one ratio row: x/(c) for p50 and p99, (c)/x for throughput."""
    p50 = _ratio(other.quantile_ms(50), outbox.quantile_ms(50))
    p99 = _ratio(other.quantile_ms(99), outbox.quantile_ms(99))
    rate = _ratio(outbox.throughput, other.throughput)
    return f"| {label} | {p50} | {p99} | {rate} |"


def _ratios(phases: list[Phase]) -> list[str]:
    """Return the headline ratios against the outbox on the same slow SMTP server."""
    by_name = {phase.name: phase.result for phase in phases}
    outbox = by_name["outbox-slow"]
    return [
        "| x compared with (c) outbox | p50 latency x/(c) | p99 latency x/(c)"
        " | throughput (c)/x |",
        "|---|---:|---:|---:|",
        _ratio_row(LABELS["sync"], by_name["sync"], outbox),
        _ratio_row(LABELS["thread"], by_name["thread"], outbox),
        _ratio_row("(c) outbox, instant SMTP", by_name["outbox-fast"], outbox),
    ]


def latency_section(phases: list[Phase], smtp_delay_ms: float) -> list[str]:
    """Return the latency table and its ratios, as ``--only latency`` prints them."""
    return [
        *_latency_table(phases),
        "",
        f"Ratios against (c) outbox with the same {smtp_delay_ms:.0f} ms SMTP"
        " server (latency: x/(c), higher is worse for x):",
        "",
        *_ratios(phases),
    ]


def _crash_table(crashes: list[CrashResult]) -> list[str]:
    """Return the kill -9 table's lines."""
    rows = [
        "| pattern | signups answered 2xx | mails received for them | lost"
        " | duplicates | after the kill |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for c in crashes:
        rows.append(
            f"| {CRASH_LABELS[c.name]}"
            f" | {c.answered} | {c.delivered} | {c.lost} ({c.lost / c.answered:.0%})"
            f" | {c.duplicates} | {c.how} |"
        )
    return rows


def _header(results: Results) -> list[str]:
    """Return the title, how the run was made, and the machine."""
    delay = f"{results.smtp_delay_ms:.0f} ms"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    figures = results.mailers
    return [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.run`), which rewrites this"
        " whole file and the charts it links to.",
        "Absolute numbers depend on the machine; the ratios are the result.",
        "",
        f"- command: `{results.command}` ({when})",
        f"- CPU: {cpu_description()}",
        f"- Python {platform.python_version()}, PostgreSQL {results.postgres}",
        f"- every app served by `gunicorn {GUNICORN_SETTINGS}` (gthread) on 127.0.0.1",
        f"- mailer figures: {figures.ceilings[RAW].sink} (fast), and"
        f" {figures.relay_ceilings[RAW].sink} (a relay such as SES or Postmark);"
        f" `MAILER_CONCURRENCY`: {figures.concurrency}",
        f"- seed patterns: an aiosmtpd sink in its own process that answers MAIL FROM"
        f" after {delay} (an async sleep, so connections wait side by side),"
        " or at once",
        "",
    ]


def _seed_sections(results: Results) -> list[str]:
    """Return the seed patterns' signup latency and kill -9 sections."""
    delay = f"{results.smtp_delay_ms:.0f} ms"
    return [
        "## Signup latency: the seed's patterns against the outbox",
        "",
        f"Closed-loop load from the same {results.concurrency} client threads for"
        " every pattern, one request at a time each on a new connection, the same"
        " form body, after an unmeasured warm-up. The seed apps write no user row;"
        " the outbox writes the user and the email row in one PostgreSQL"
        " transaction, while a `python -m mailer_service` process delivers to the"
        " SMTP server named in the row.",
        "",
        *_latency_table(results.phases),
        "",
        f"Ratios against (c) outbox with the same {delay} SMTP server"
        " (latency: x/(c), higher is worse for x):",
        "",
        *_ratios(results.phases),
        "",
        "## Mail lost on `kill -9` of the web process",
        "",
        "Signups are fired, then gunicorn's whole process group gets SIGKILL right"
        " after the last answer. Mails are counted on the SMTP sink by recipient.",
        "",
        *_crash_table(results.crashes),
        "",
    ]


HOW_TO_READ = [
    "## How to read this",
    "",
    "- The ceilings are measured in the same run as the mailers, against the"
    " same server: a busy machine lowers both sides of every share.",
    "- The Flask-Mail loop is what one connection can carry when the only"
    " work is building a `flask_mail.Message` and sending it; the mailer adds"
    " a claim per batch and a committed outcome per message. The raw loop"
    " adds nothing at all to the SMTP conversation.",
    "- The relay sink's 50 ms sit between the end of DATA and its 250, where a"
    " relay stores the message before taking responsibility for it; one"
    " connection then carries at most 20 messages/s, whatever the sender.",
    "- Commit-to-250 is measured with the mailer idle: it shows how long a"
    " new email waits for the mailer to notice it, not how fast a backlog"
    " drains.",
    "- The seed apps (`bench/seed_apps.py`) are the seed's views verbatim;"
    " they only send mail, so (b) does less work per signup than (c), which"
    " also inserts a user and commits to PostgreSQL.",
    "- The two (c) rows differ only by noise: the signup request never opens"
    " an SMTP connection; only the separate mailer process does.",
    "- The seed patterns' SMTP delay sits before MAIL FROM is answered, before"
    " the message is handed over: the thread pattern's loss on kill -9"
    " depends on where the latency sits, the outbox's does not.",
    "- One shared 2-core machine runs the apps, PostgreSQL, the mailers, the"
    " SMTP sinks and the load generator: expect run-to-run noise in the"
    " absolute numbers.",
    "",
]


def render(results: Results) -> str:
    """Return the whole of BENCHMARKS.md."""
    evaluated = targets.evaluate(
        results.mailers, results.latency, results.claim, results.floor, results.bursts
    )
    lines = [
        *_header(results),
        "## Targets",
        "",
        "Each target is checked against this run's own figures.",
        "",
        *targets.table(evaluated),
        "",
        *report_sections.mailer_section(
            results.mailers, results.charts.get("throughput")
        ),
        *pipeline_section(results.pipeline),
        *producers_section(results.producers),
        *burst_section(results.bursts),
        *report_sections.attachment_section(results.attachments),
        *report_sections.latency_section(
            results.latency, results.charts.get("latency")
        ),
        *report_sections.claim_section(results.claim),
        *report_sections.floor_section(results.floor),
        *report_sections.capacity_section(results.capacity, results.concurrency),
        *_seed_sections(results),
        *HOW_TO_READ,
    ]
    return "\n".join(lines)
