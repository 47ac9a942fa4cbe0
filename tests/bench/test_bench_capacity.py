"""Fast checks of the capacity phase's bookkeeping: measured statements, the report.

Figures here are made up; nothing checks how fast anything ran.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import URL

from bench.capacity import Capacity, SignupCapacity
from bench.cli import parser
from bench.context import Bench
from bench.mailer_metrics import NO_WORK, WorkCounts, parse_work_counts
from bench.metered_drain import MeteredDrain, metered_drain
from bench.report import render
from bench.report_sections import capacity_section
from bench.smtp_sink import SmtpSink
from bench.throughput import Drain
from tests.bench.test_bench_burst import _exposition
from tests.bench.test_bench_report import _load, _results
from tests.conftest import url_string

SINK = "postfix smtp-sink"


def _metered(processes: int, span: float, counts: WorkCounts) -> MeteredDrain:
    """Return a made-up drain of 3,000 rows over ``span`` seconds."""
    return MeteredDrain(Drain(processes, SINK, 3000, 3000, span, 3000), counts)


def _capacity() -> Capacity:
    """Return made-up capacity figures: 1 and 2 mailers, 1 gunicorn worker."""
    return Capacity(
        signups=[SignupCapacity(1, _load([4.0, 5.0]))],
        metered=[
            # 10 s: 750 claims of 4 rows, 300 writes of 10 rows.
            _metered(1, 10.0, WorkCounts(40, 750, 12, 300, 3000)),
            # 5 s: 1,000 claims of 3 rows, 600 writes of 5 rows.
            _metered(2, 5.0, WorkCounts(30, 1000, 7, 600, 3000)),
        ],
    )


def test_parse_work_counts_reads_the_completer_histograms_count_and_sum() -> None:
    exposition = _exposition(ticks=3, rows=9, empty=1, batches=(4, 4, 3, 16))

    counts = parse_work_counts(exposition)

    assert counts == WorkCounts(3, 9, 1, completer_statements=4, completer_rows=27)


def test_parse_work_counts_names_the_missing_completer_histogram() -> None:
    exposition = _exposition(ticks=3, rows=9, empty=1, completer=False)

    with pytest.raises(ValueError) as raised:
        parse_work_counts(exposition)

    assert str(raised.value) == (
        "the mailer's metrics lack mailer_completer_batch_rows_count,"
        " mailer_completer_batch_rows_sum"
    )


def test_work_counts_add_sums_two_mailers() -> None:
    one, two = WorkCounts(1, 2, 3, 4, 5), WorkCounts(10, 20, 30, 40, 50)
    assert one + two == WorkCounts(11, 22, 33, 44, 55)
    assert sum([one, two], NO_WORK) == one + two


def test_metered_drain_figures_come_from_the_counters() -> None:
    metered = _metered(1, 10.0, WorkCounts(40, 750, 12, 300, 3000))

    assert metered.claims_per_second == 75.0
    assert metered.rows_per_claim == 4.0  # 3,000 attempts over 750 claims
    assert metered.completer_statements_per_second == 30.0
    assert metered.rows_per_completer_statement == 10.0
    idle = _metered(1, 10.0, NO_WORK)
    assert (idle.rows_per_claim, idle.rows_per_completer_statement) == (0.0, 0.0)


def test_capacity_section_reports_the_measured_statements() -> None:
    text = "\n".join(capacity_section(_capacity(), concurrency=8))

    assert "## Capacity\n" in text
    assert (
        "| mailer processes | rows sent | attempts | attempts/s (rows claimed ="
        " written) | claim statements/s (with rows) | rows per claim | empty claims"
        " | completer statements/s | rows per completer statement |"
    ) in text
    assert "| 1 | 3000 | 3000 | 300 | 75.0 | 4.0 | 12 | 30.0 | 10.0 |" in text
    assert "| 2 | 3000 | 3000 | 600 | 200.0 | 3.0 | 7 | 120.0 | 5.0 |" in text
    assert "`mailer_completer_batch_rows`" in text
    for guess in ("filled its batch", "a lower bound", "batch of 20"):
        assert guess not in text
    assert capacity_section(None, concurrency=8) == []


def test_report_renders_the_capacity_section_and_its_drains() -> None:
    capacity = _capacity()

    markdown = render(replace(_results([1, 2, 4]), capacity=capacity))

    assert "| 2 | 3000 | 3000 | 600 | 200.0 | 3.0 | 7 | 120.0 | 5.0 |" in markdown
    assert [d.processes for d in capacity.drains] == [1, 2]  # what the chart plots


def test_cli_only_runs_the_capacity_phase_alone() -> None:
    args = parser().parse_args(["--only", "capacity", "--capacity-processes", "1,2"])
    assert (args.only, args.capacity_processes) == ("capacity", [1, 2])


@pytest.mark.slow
def test_metered_drain_reads_real_mailers_counters(pg_url: URL, tmp_path: Path) -> None:
    with SmtpSink() as sink:
        bench = Bench.on_one_sink(url_string(pg_url), sink, tmp_path)
        metered = metered_drain(bench, sink, processes=2, rows=40, tag="metered")

    assert (metered.drain.sent, metered.drain.attempts) == (40, 40)
    # Every outcome row went through the completer, counted once.
    assert metered.counts.completer_rows == 40
    assert 1 <= metered.counts.completer_statements <= 40
    assert 1 <= metered.counts.claims_with_rows <= 40
