"""Fast checks of the benchmark's bookkeeping: CLI, claim binding, tallies, report.

Figures here are made up; nothing checks how fast anything ran.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import URL, text

from bench import pg, targets
from bench.attachments import AttachmentCost
from bench.ceilings import FLASK_MAIL, RAW, Ceiling
from bench.claim_cost import ClaimCost, claim_params, measure_claim_cost
from bench.cli import claim_param, int_list, mailer_concurrency
from bench.commit_latency import CommitLatency
from bench.crash import CrashResult
from bench.latency import Phase
from bench.load import LoadResult
from bench.report import LABELS, Results, latency_section, render
from bench.signup_floor import FloorComparison
from bench.throughput import Drain, MailerFigures
from mailer_service.sql import load_queries
from tests.conftest import url_string


def _load(latencies_ms: list[float]) -> LoadResult:
    """Return a load result with these 2xx latencies."""
    result = LoadResult(latencies=[ms / 1000 for ms in latencies_ms], elapsed=1.0)
    result.statuses = Counter({201: len(latencies_ms)})
    return result


def _results(processes: list[int]) -> Results:
    """Return made-up results: 1 mailer at 60% of Flask-Mail, 2 at 110%."""
    sink, relay = "postfix smtp-sink", "aiosmtpd, 50 ms at end of DATA"
    rates = {1: 300.0, 2: 550.0, 4: 700.0}
    figures = MailerFigures(
        ceilings={
            RAW: Ceiling(RAW, sink, 100, 3000.0),
            FLASK_MAIL: Ceiling(FLASK_MAIL, sink, 100, 500.0),
        },
        drains=[Drain(n, sink, 100, 100, 100 / rates[n], 100) for n in processes],
        relay_ceilings={
            RAW: Ceiling(RAW, relay, 20, 20.0),
            FLASK_MAIL: Ceiling(FLASK_MAIL, relay, 20, 19.0),
        },
        relay_drain=Drain(1, relay, 20, 20, 20 / 18.0, 20),
        hold_drain=Drain(
            1, sink, 100, 100, 100 / 240.0, 100, "MAILER_ON_AMBIGUOUS=hold"
        ),
        concurrency="default",
        effective_concurrency=1,
    )
    return Results(
        command="python -m bench.run",
        postgres="15",
        smtp_delay_ms=500,
        concurrency=8,
        phases=[
            Phase(name, "500 ms", _load([5.0, 6.0]))
            for name in ("sync", "thread", "outbox-slow", "outbox-fast")
        ],
        crashes=[
            CrashResult("thread", 5, 0, 0, "waited"),
            CrashResult("outbox", 5, 5, 0, "drained"),
        ],
        mailers=figures,
        latency=CommitLatency([900.0, 950.0, 1000.0], planned=3, budget=10),
        claim=ClaimCost(10, 100, [1.0, 2.0], [1.0, 2.5], "Update on outbox"),
        floor=FloorComparison(real=_load([4.0, 5.0]), floor=_load([2.0, 2.5])),
        # 400/s plain, 100/s with the attachment: 10 - 2.5 = 7.5 ms more each.
        attachments=AttachmentCost(
            plain=Drain(1, sink, 200, 200, 200 / 400.0, 200),
            attached=Drain(1, sink, 200, 200, 200 / 100.0, 200),
            attachment_bytes=102_400,
            table_bytes=100 * 110_592,
            table_rows=100,
        ),
        charts={"throughput": "docs/bench/throughput.png"},
    )


def test_targets_say_which_were_met() -> None:
    results = _results([1, 2, 4])
    met = {
        t.figure: t.met
        for t in targets.evaluate(
            results.mailers, results.latency, results.claim, results.floor
        )
    }
    assert met == {
        "1 mailer → smtp-sink, share of the Flask-Mail loop": False,
        "2 mailers → smtp-sink, share of the Flask-Mail loop": True,
        "1 mailer → 50 ms relay": True,  # 18/s >= 0.8 x 1 x 19/s
        "commit → SMTP 250, idle mailer, p50": False,
        "commit → SMTP 250, idle mailer, p99": False,
        "claim p99, 100 sent rows vs none": True,  # 2.49 / 1.99
        "signup p50, real app vs floor app (sequential)": False,  # 4.5 / 2.25
    }


def test_targets_mark_an_unmeasured_process_count_not_applicable() -> None:
    results = _results([1, 4])
    evaluated = targets.evaluate(
        results.mailers, results.latency, results.claim, results.floor
    )
    two = next(t for t in evaluated if t.figure.startswith("2 mailers"))
    assert two.met is None
    assert "--mailer-processes" in two.measured


def test_report_renders_the_targets_table_and_every_section() -> None:
    markdown = render(_results([1, 2, 4]))
    assert "## Targets\n" in markdown
    assert "| figure | target | measured | met? |" in markdown
    assert "| 1 mailer → smtp-sink, share of the Flask-Mail loop | ≥ 70% | 60%" in (
        markdown
    )
    for heading in (
        "## Mailer throughput against its ceilings",
        "## Commit to SMTP 250, idle mailer",
        "## Claim cost against history",
        "## Signup: the real app against its floor",
        "## Signup latency: the seed's patterns against the outbox",
        "## Mail lost on `kill -9` of the web process",
    ):
        assert heading in markdown
    assert "## Capacity" not in markdown  # --capacity was off
    assert "![Throughput against mailer processes](docs/bench/throughput.png)" in (
        markdown
    )
    assert "```\nUpdate on outbox\n```" in markdown
    # hold's marker cost: 240/s against the 1-process drain's 300/s
    assert "| 1 mailer process, `MAILER_ON_AMBIGUOUS=hold` |" in markdown
    assert "it cost 20% of one mailer's rate here (240 vs 300" in markdown


def test_report_renders_the_attachment_cost() -> None:
    markdown = render(_results([1, 2, 4]))
    assert "## What a 100 KB attachment costs\n" in markdown
    assert "| plain (text and HTML) | 200 | 400.0 | 2.50 |" in markdown
    assert "| the same + one 100 KB attachment | 200 | 100.0 | 10.00 |" in markdown
    assert "runs at **25%** of its plain rate: **7.50 ms** more per message" in (
        markdown
    )
    assert "holds 108.0 KB per message" in markdown
    # 102,400 bytes: 136,536 base64 characters in 1,797 CRLF-ended lines.
    assert "base64 makes the attachment 136.8 KB" in markdown


def test_attachment_cost_is_zero_when_a_rate_is_undefined() -> None:
    sink = "postfix smtp-sink"
    cost = AttachmentCost(
        plain=Drain(1, sink, 1, 1, 0.0, 1),
        attached=Drain(1, sink, 10, 10, 1.0, 10),
        attachment_bytes=10,
        table_bytes=0,
        table_rows=0,
    )
    assert (cost.ratio, cost.extra_ms, cost.bytes_per_row) == (0.0, 0.0, 0.0)


def test_claim_params_bind_exactly_what_the_claim_names() -> None:
    clause = load_queries("delivery_postgresql")["claim_due"]
    params = claim_params(clause, {"unused": 1})
    assert set(params) == set(clause.compile().params)
    assert "unused" not in params


def test_claim_params_name_a_parameter_nobody_binds() -> None:
    clause = text("SELECT :batch_size, :shard")
    with pytest.raises(ValueError, match="shard"):
        claim_params(clause)
    assert claim_params(clause, {"shard": 3}) == {"batch_size": 20, "shard": 3}


def test_cli_parses_lists_and_claim_params() -> None:
    assert int_list("1,2,4") == [1, 2, 4]
    assert claim_param("shard=3") == ("shard", 3)
    assert claim_param("name=x") == ("name", "x")
    for bad in ("0,1", "a", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            int_list(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        claim_param("novalue")


def test_mailer_concurrency_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAILER_CONCURRENCY", raising=False)
    assert mailer_concurrency(None).label == "default (4)"
    assert mailer_concurrency(None).effective == 4
    assert mailer_concurrency(None).env == {}
    assert mailer_concurrency(8).env == {"MAILER_CONCURRENCY": "8"}
    monkeypatch.setenv("MAILER_CONCURRENCY", "4")
    inherited = mailer_concurrency(None)
    assert (inherited.env, inherited.effective) == ({}, 4)


def test_tally_reads_the_sent_at_span(pg_url: URL) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pg.connect(url_string(pg_url)) as connection:
        for i in range(3):
            connection.execute(
                "INSERT INTO outbox (recipient, subject, body_text, message_id,"
                " status, sent_at) VALUES (%s, 's', 'b', %s, 'sent', %s)",
                (f"r{i}@example.com", f"<t{i}@example.com>", start + timedelta(i)),
            )
        connection.execute(
            "INSERT INTO outbox (recipient, subject, body_text, message_id)"
            " VALUES ('p@example.com', 's', 'b', '<p@example.com>')"
        )
    tally = pg.tally(url_string(pg_url))
    assert tally.statuses == {"sent": 3, "pending": 1}
    assert tally.span == timedelta(days=2).total_seconds()
    assert tally.per_second == 3 / tally.span


def test_claim_cost_runs_the_real_claim_and_explains_it(postgres_server) -> None:
    admin = url_string(postgres_server.admin_url)
    cost = measure_claim_cost(admin, runs=3, pending=30, history=100)
    assert len(cost.empty_ms) == len(cost.history_ms) == 3
    assert cost.explain.startswith("Update on outbox")
    assert "Buffers:" in cost.explain


def test_latency_section_is_the_reports_table_and_its_ratios() -> None:
    phases = _results([1]).phases
    phases[0] = Phase("sync", "500 ms", _load([50.0, 60.0]))

    section = latency_section(phases, 500)

    sync = LABELS["sync"]
    assert f"| {sync} | 500 ms | 2 | 0 | 55.0 |" in "\n".join(section)
    assert "with the same 500 ms SMTP server" in "\n".join(section)
    # sync's p50 is 55 ms against the outbox's 5.5 ms.
    assert f"| {sync} | 10.0x |" in "\n".join(section)
