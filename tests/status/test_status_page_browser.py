"""The status page in a real browser: `outbox serve` on a seeded PostgreSQL.

Headless Chromium loads the page that a real ``outbox serve`` process serves;
the numbers it shows are checked against SQL, the chart must have a bar for
every nonzero minute and take up room on screen, hostile text must render as
text, and the lookup form must work. A screenshot is left in var/artifacts.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from sqlalchemy import URL, Engine, text

from tests.support import VENV_BIN
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, artifact, require_browser
from tests.support.databases import url_string
from tests.support.processes import child_env, free_port, wait_until
from tests.support.status_rows import HOSTILE_RECIPIENT, LOOKED_UP, seed_status_rows

pytestmark = pytest.mark.slow

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def answers(url: str) -> bool:
    """Tell whether ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def served(database_url: URL, engine: Engine, tmp_path) -> Iterator[str]:
    """Seed the database, run ``outbox serve`` on a free port; yield its URL."""
    seed_status_rows(engine)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(VENV_BIN / "outbox"), "serve", "--port", str(port)],
            env=child_env(DATABASE_URL=url_string(database_url)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/"
    try:
        assert wait_until(lambda: answers(base), 60), log.read_text()
        yield base
    finally:
        process.terminate()
        assert process.wait(30) == 0, log.read_text()
        assert "status page stopped" in log.read_text()


def sql(engine: Engine, query: str) -> list[tuple]:
    """Return every row of ``query``."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(query))]


@pytest.fixture
def browser_page() -> Iterator:
    """A fresh page of headless Debian Chromium."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page(viewport={"width": 1100, "height": 1400})
        finally:
            browser.close()


@POSTGRES_ONLY
def test_status_page_in_a_browser_matches_sql(served, browser_page, engine):
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(served)

    # Rows per status, as the cards show them and as SQL counts them.
    counts = dict(sql(engine, "SELECT status, count(*) FROM outbox GROUP BY status"))
    for status in ("pending", "sending", "sent", "failed"):
        shown = page.locator(f'[data-status="{status}"] .value').inner_text()
        assert int(shown) == counts.get(status, 0), status
    [(oldest,)] = sql(
        engine,
        "SELECT floor(EXTRACT(EPOCH FROM now() - min(available_at)))::int FROM outbox"
        " WHERE status = 'pending' AND available_at <= now()",
    )
    seconds = int(page.locator("#oldest-due").get_attribute("data-seconds"))
    assert abs(seconds - oldest) <= 30
    assert page.locator("#oldest-due .value").inner_text().startswith("2h ")

    # The chart: one bar per nonzero minute and kind, with the counts SQL finds.
    per_minute = sql(
        engine,
        "SELECT kind, floor(EXTRACT(EPOCH FROM now() - at) / 60)::int, count(*)"
        " FROM (SELECT 'sent' AS kind, sent_at AS at FROM outbox WHERE status = 'sent'"
        "       UNION ALL SELECT 'failed', last_attempt_at FROM outbox"
        "       WHERE status = 'failed') AS t"
        " WHERE at > now() - interval '1 hour' GROUP BY 1, 2",
    )
    for kind in ("sent", "failed"):
        bars = page.locator(f"#chart rect.bar.{kind}")
        expected = {m: n for k, m, n in per_minute if k == kind}
        shown = {
            int(bars.nth(i).get_attribute("data-minutes-ago")): int(
                bars.nth(i).get_attribute("data-count")
            )
            for i in range(bars.count())
        }
        assert shown == expected, kind
        for i in range(bars.count()):
            box = bars.nth(i).bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0
    chart = page.locator("#chart").bounding_box()
    assert chart is not None and chart["width"] > 300 and chart["height"] > 100
    assert int(page.locator("#sent-last-hour").inner_text()) == sum(
        n for k, _, n in per_minute if k == "sent"
    )

    # Latest failures, newest first, hostile text shown as text and never run.
    failed_ids = [
        row[0]
        for row in sql(
            engine,
            "SELECT id FROM outbox WHERE status = 'failed'"
            " ORDER BY last_attempt_at DESC NULLS LAST, id DESC LIMIT 20",
        )
    ]
    shown_ids = [
        int(i) for i in page.locator("#failures tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )
    ]  # fmt: skip
    assert shown_ids == failed_ids
    assert page.get_by_text(HOSTILE_RECIPIENT).count() == 1
    assert page.evaluate("window.pwned") is None
    assert page.locator("script").count() == 0
    assert dialogs == []

    path = artifact("status_page.png")
    page.screenshot(path=str(path), full_page=True)
    print(f"status page screenshot: {path}")

    # The lookup form: the address's rows, newest first.
    page.fill('input[name="recipient"]', LOOKED_UP.upper())
    page.click('#lookup button[type="submit"]')
    page.wait_for_selector("#lookup-results")
    expected = [
        row[0]
        for row in sql(
            engine,
            f"SELECT id FROM outbox WHERE recipient = '{LOOKED_UP}' ORDER BY id DESC",
        )
    ]
    found = page.locator("#lookup-results tbody tr").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.id))"
    )
    assert found == expected and len(found) == 2
    page.screenshot(path=str(artifact("status_page_lookup.png")), full_page=True)
