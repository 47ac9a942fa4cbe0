"""Fast checks of the burst phase's bookkeeping: the mailer's counters and the report.

Figures here are made up; nothing checks how fast anything ran.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import URL

from bench import targets
from bench.burst import Burst, burst_over_sql
from bench.burst_report import burst_section
from bench.cli import ONLY, parser
from bench.context import Bench
from bench.mailer_metrics import WorkCounts, parse_work_counts
from bench.report import render
from bench.run import ALONE
from bench.smtp_sink import SmtpSink
from tests.bench.test_bench_report import _results
from tests.conftest import url_string


def _exposition(
    ticks: int,
    rows: int,
    empty: int,
    *,
    labels: bool = True,
    batches: tuple[int, ...] = (),
    completer: bool = True,
) -> str:
    """Return a text exposition with the mailer's work counters.

    ``batches`` are the rows of each completer statement, observed in its
    histogram; ``completer=False`` leaves the histogram out.
    """
    registry = CollectorRegistry()
    Counter("mailer_ticks", "Ticks run.", registry=registry).inc(ticks)
    claims = Counter("mailer_claims", "Claims.", ["found"], registry=registry)
    if labels:
        claims.labels("rows").inc(rows)
        claims.labels("empty").inc(empty)
    if completer:
        histogram = Histogram(
            "mailer_completer_batch_rows",
            "Outcomes written by one statement of the completer.",
            buckets=(1, 2, 4, 8, 16),
            registry=registry,
        )
        for batch in batches:
            histogram.observe(batch)
    return generate_latest(registry).decode()


def _burst(ticks: int, empty: int, signups: int = 10_000, **changes) -> Burst:
    """Return a made-up burst of ``signups`` with these ticks and empty claims."""
    burst = Burst(
        producers="signup-shaped SQL transactions",
        concurrent=32,
        requested=10_000,
        signups=signups,
        burst_seconds=5.0,
        sent_seconds=20.0,
        window_seconds=21.5,
        counts=WorkCounts(ticks, 2_500, empty, 1_000, signups),
        poll_interval=1.0,
        sink="postfix smtp-sink",
    )
    return replace(burst, **changes)


def test_parse_work_counts_reads_ticks_and_claims_by_what_they_found() -> None:
    counts = parse_work_counts(_exposition(ticks=7, rows=30, empty=4))
    assert (counts.ticks, counts.claims_with_rows, counts.empty_claims) == (7, 30, 4)
    assert counts.claims == 34


def test_parse_work_counts_names_a_missing_counter() -> None:
    with pytest.raises(ValueError, match="found='empty'"):
        parse_work_counts(_exposition(ticks=1, rows=0, empty=0, labels=False))


def test_parse_work_counts_reads_the_mailers_own_counters() -> None:
    # Fails if the mailer renames a counter, its label or the completer histogram.
    import mailer_service.metrics  # noqa: F401  registers them in REGISTRY

    counts = parse_work_counts(generate_latest(REGISTRY).decode())
    assert min(counts.ticks, counts.claims, counts.completer_statements) >= 0
    assert counts.completer_rows >= 0


def test_work_counts_since_subtracts_the_earlier_read() -> None:
    later = WorkCounts(12, 530, 9, 80, 2_100)
    assert later.since(WorkCounts(2, 30, 4, 10, 100)) == WorkCounts(
        10, 500, 5, 70, 2_000
    )


def test_burst_figures_per_signup_and_poll_rings() -> None:
    burst = _burst(ticks=25, empty=4)
    assert burst.signups_per_second == 2_000
    assert burst.per_thousand(25) == 2.5
    assert burst.share(4) == 0.0004
    assert burst.poll_rings == 22  # 21.5 s at one ring a second, plus the first
    assert burst.fewer_than_signups(9_999)
    assert not burst.fewer_than_signups(10_000)
    assert _burst(ticks=0, empty=0, signups=0).per_thousand(5) == 0.0


def test_burst_section_shows_counts_and_ratios_per_thousand() -> None:
    text = "\n".join(burst_section([_burst(ticks=25, empty=4)]))

    assert "## A burst of concurrent signups: ticks and claims\n" in text
    assert "`MAILER_POLL_INTERVAL` = 1 s) idles against postfix smtp-sink" in text
    assert (
        "| signup-shaped SQL transactions | 32 | 10,000 | 5.0 | 2,000 | 20.0"
        " | 25 | 22 | 2,504 | 4 | 2.50 | 0.40 |"
    ) in text
    assert (
        "- signup-shaped SQL transactions: 10,000 signups, 25 ticks (0.25% of"
        " them) and 4 empty claims (0.04% of them); target met." in text
    )
    assert "not committed" not in text
    assert burst_section([]) == []


def test_burst_section_says_when_the_target_is_missed() -> None:
    burst = _burst(
        ticks=10_000,
        empty=12_000,
        signups=9_990,
        failures={"RemoteDisconnected": 1, "HTTP 500": 9},
    )

    text = "\n".join(burst_section([burst]))

    assert "target **missed**: not fewer ticks nor empty claims than signups" in text
    assert (
        "- signup-shaped SQL transactions: not committed, 10 of 10,000 signups"
        " (HTTP 500: 9, RemoteDisconnected: 1)." in text
    )


def test_targets_check_ticks_and_empty_claims_against_signups() -> None:
    results = _results([1, 2, 4])
    bursts = [_burst(ticks=25, empty=4), _burst(ticks=10_000, empty=0)]

    evaluated = targets.evaluate(
        results.mailers, results.latency, results.claim, results.floor, bursts
    )

    burst_rows = [(t.figure, t.measured, t.met) for t in evaluated[-4:]]
    name = "burst of 10,000 signups, signup-shaped SQL transactions"
    assert burst_rows == [
        (f"{name}: ticks", "25 for 10,000 signups (2.50 per 1,000)", True),
        (f"{name}: empty claims", "4 for 10,000 signups (0.40 per 1,000)", True),
        (f"{name}: ticks", "10,000 for 10,000 signups (1,000.00 per 1,000)", False),
        (f"{name}: empty claims", "0 for 10,000 signups (0.00 per 1,000)", True),
    ]


def test_report_renders_the_burst_targets_and_section() -> None:
    markdown = render(replace(_results([1, 2, 4]), bursts=[_burst(25, 4)]))

    assert "| burst of 10,000 signups, signup-shaped SQL transactions: ticks" in (
        markdown
    )
    assert "## A burst of concurrent signups: ticks and claims" in markdown
    assert "## A burst" not in render(_results([1, 2, 4]))


def test_cli_only_names_the_phases_run_can_run_alone() -> None:
    assert set(ONLY) == set(ALONE)
    args = parser().parse_args(["--only", "burst", "--burst-signups", "500"])
    assert (args.only, args.burst_signups, args.burst_producers) == ("burst", 500, 32)
    with pytest.raises(SystemExit):
        parser().parse_args(["--only", "claim"])


@pytest.mark.slow
def test_burst_over_sql_reads_a_real_mailers_counters(
    pg_url: URL, tmp_path: Path
) -> None:
    with SmtpSink() as sink:
        bench = Bench.on_one_sink(url_string(pg_url), sink, tmp_path)
        burst = burst_over_sql(bench, signups=40, producers=4)

    assert (burst.requested, burst.signups, burst.failures) == (40, 40, {})
    assert burst.counts.ticks >= 1  # the first commit woke it
    assert burst.counts.claims_with_rows >= 1
    assert burst.sent_seconds >= burst.burst_seconds  # the last 250 after the last row
