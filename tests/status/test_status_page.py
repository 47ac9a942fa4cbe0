"""The status page shows the outbox as SQL sees it, and never runs what it shows."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from mailer_service.status_page import (
    CHART_HEIGHT,
    MINUTES,
    chart_bars,
    create_status_app,
)
from tests.status.pages import Elements
from tests.support import VENV_BIN
from tests.support.admin import outbox
from tests.support.outbox import status_counts
from tests.support.processes import child_env
from tests.support.status_rows import (
    HOSTILE_ERROR,
    HOSTILE_RECIPIENT,
    LOOKED_UP,
    SPREAD,
    seed_status_rows,
)


@pytest.fixture
def page(engine: Engine) -> Iterator[FlaskClient]:
    """A test client of the status page on the test's seeded database."""
    seed_status_rows(engine)
    yield create_status_app(engine).test_client()


def test_status_page_counts_match_the_table(page, engine):
    body = page.get("/").data.decode()

    shown = re.findall(
        r'data-status="(\w+)">\s*<div class="muted">\w+</div>\s*'
        r'<div class="value" data-total="(\d+)">(\d+)</div>',
        body,
    )

    counts = status_counts(engine)
    assert [s for s, _, _ in shown] == [
        "pending",
        "sending",
        "sent",
        "failed",
        "cancelled",
        "suppressed",
    ]
    assert [(int(a), int(b)) for _, a, b in shown] == [
        (counts.get(s, 0), counts.get(s, 0)) for s, _, _ in shown
    ]


def test_status_page_shows_the_oldest_due_age(page):
    [card] = Elements(page.get("/").data.decode()).find("div", id="oldest-due")

    assert 7205 - 2 <= int(card["data-seconds"]) <= 7205 + 60


def test_status_page_chart_has_a_bar_per_nonzero_minute(page):
    html = Elements(page.get("/").data.decode())
    sent = html.find("rect", **{"class": "bar sent"})
    failed = html.find("rect", **{"class": "bar failed"})

    def by_minute(bars):
        return {int(b["data-minutes-ago"]): int(b["data-count"]) for b in bars}

    assert by_minute(sent) == {m: s for m, (s, _) in SPREAD.items() if s}
    # The hostile row failed 8 minutes ago; the lookup's failure is days old.
    assert by_minute(failed) == {**{m: f for m, (_, f) in SPREAD.items() if f}, 8: 1}
    assert all(float(b["height"]) > 0 and float(b["width"]) > 0 for b in sent)


def test_chart_bars_scale_to_the_tallest_and_skip_minutes_outside_the_hour():
    bars, top = chart_bars({0: (10, 0), 59: (5, 5), MINUTES: (99, 0), -1: (1, 0)})

    assert top == 10
    assert [(b.kind, b.minutes_ago, b.count) for b in bars] == [
        ("sent", 0, 10),
        ("sent", 59, 5),
        ("failed", 59, 5),
    ]
    tallest, half = bars[0], bars[1]
    assert tallest.height == 2 * half.height
    assert tallest.y + tallest.height == half.y + half.height < CHART_HEIGHT
    assert bars[0].x > bars[1].x  # now is on the right


def test_status_page_escapes_every_value_from_the_table(page):
    body = page.get("/").data.decode()

    assert "<script" not in body.lower()
    assert "<img" not in body.lower()
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;@example.com" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_status_page_escapes_a_hostile_lookup(page):
    response = page.get("/", query_string={"recipient": HOSTILE_RECIPIENT})
    body = response.data.decode()

    assert "<script" not in body.lower()
    [row] = Elements(body).find("tr", data_status="failed")
    assert HOSTILE_ERROR.replace("<", "&lt;").replace(">", "&gt;") in body
    assert row["data-id"]


def test_status_page_forbids_scripts_and_caching(page):
    headers = page.get("/").headers

    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'none'" in headers["Content-Security-Policy"]
    assert "form-action 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    # Same-origin only: a looked-up address never reaches another site.
    assert headers["Referrer-Policy"] == "same-origin"


def test_status_page_looks_up_a_recipient_ignoring_case(page, engine):
    body = page.get("/", query_string={"recipient": "  ADA@Example.com "}).data.decode()

    rows = Elements(body).find("tr")
    statuses = [r["data-status"] for r in rows if r.get("data-status")]
    assert statuses == ["failed", "sent"]  # newest first
    assert "550 5.1.1 &lt;ada@example.com&gt; no such user" in body
    assert LOOKED_UP in body


def test_status_page_says_when_a_lookup_finds_nothing(page):
    body = page.get("/", query_string={"recipient": "nobody@example.com"}).data.decode()

    assert 'id="lookup-none"' in body
    assert "No rows for nobody@example.com." in body


def test_status_page_lists_the_latest_failures_newest_first(page):
    body = page.get("/").data.decode()
    table = body[
        body.index('id="failures"') : body.index(
            "</table>", body.index('id="failures"')
        )
    ]

    ids = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', table)]
    assert len(ids) == sum(f for _, f in SPREAD.values()) + 2
    assert "554 no" in table


def test_outbox_serve_help_says_it_binds_locally(database_url):
    result = outbox(database_url, "serve", "--help")

    assert result.exit_code == 0
    assert "127.0.0.1" in result.output
    assert "status page" in result.output


def test_outbox_serve_reports_a_bad_database_url():
    result = subprocess.run(
        [str(VENV_BIN / "outbox"), "serve", "--port", "1"],
        env=child_env(DATABASE_URL="mysql://x"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "DATABASE_URL must use postgresql:// or sqlite://" in result.stderr
