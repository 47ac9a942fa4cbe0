"""The status page in a real browser: `outbox serve` on a seeded database.

Headless Chromium loads the page that a real ``outbox serve`` process serves;
the numbers it shows are checked against SQL, the chart must have a bar for
every nonzero minute and take up room on screen, hostile text must render as
text, and the lookup form must work. With ``OUTBOX_ADMIN_TOKEN`` set, the
browser logs in and drives every action (retry, cancel, unsuppress) through
the page's own forms, each checked in SQL; without it, no page has a button
that posts. Screenshots are left in var/artifacts.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, text

from tests.support import VENV_BIN
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, artifact, require_browser
from tests.support.databases import url_string
from tests.support.processes import child_env, free_port, wait_until
from tests.support.status_rows import (
    ADMIN_TOKEN,
    ALSO_SUPPRESSED,
    BOUNCED,
    HOSTILE_RECIPIENT,
    LOOKED_UP,
    seed_action_rows,
    seed_status_rows,
)

pytestmark = pytest.mark.slow

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def answers(url: str) -> bool:
    """Tell whether ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def outbox_serve(database_url: URL, log: Path, token: str | None) -> Iterator[str]:
    """Run ``outbox serve`` on a free port, with ``token`` or none; yield its URL."""
    env = child_env(DATABASE_URL=url_string(database_url))
    env.pop("OUTBOX_ADMIN_TOKEN", None)  # a developer's shell must not turn it on
    if token is not None:
        env["OUTBOX_ADMIN_TOKEN"] = token
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(VENV_BIN / "outbox"), "serve", "--port", str(port)],
            env=env,
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


@pytest.fixture
def served(database_url: URL, engine: Engine, tmp_path) -> Iterator[str]:
    """Seed the database, run ``outbox serve`` read-only; yield its URL."""
    seed_status_rows(engine)
    with outbox_serve(database_url, tmp_path / "serve.log", None) as base:
        yield base


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


def test_status_page_actions_in_a_browser_change_sql(
    database_url, engine, browser_page, tmp_path
):
    seed_status_rows(engine)
    rows = seed_action_rows(engine)
    page, log = browser_page, tmp_path / "serve.log"
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    origins: list[str | None] = []  # the Origin header of every POST the page made
    page.on(
        "request",
        lambda r: r.method == "POST" and origins.append(r.headers.get("origin")),
    )

    def status_of(row_id: int) -> str:
        [(status,)] = sql(engine, f"SELECT status FROM outbox WHERE id = {row_id}")
        return status

    def suppressed() -> list[str]:
        return [a for (a,) in sql(engine, "SELECT address FROM outbox_suppressions")]

    def notice() -> str:
        return page.locator("#notice").inner_text()

    with outbox_serve(database_url, log, ADMIN_TOKEN) as base:
        # Token set but not given: a login form, and no action.
        page.goto(f"{base}rows/{rows.failed}")
        assert page.locator("#login").count() == 1
        assert page.locator("#retry, #cancel, form.unsuppress, #logout").count() == 0

        page.fill('#login input[name="token"]', "not-the-token-" + "x" * 30)
        page.click('#login button[type="submit"]')
        assert page.locator("#error").get_attribute("data-code") == "403"
        assert status_of(rows.failed) == "failed"

        # Log in from the row page: the browser comes back to it.
        page.goto(f"{base}rows/{rows.failed}")
        page.fill('#login input[name="token"]', ADMIN_TOKEN)
        page.click('#login button[type="submit"]')
        page.wait_for_selector("#logout")
        assert page.url == f"{base}rows/{rows.failed}?done=logged_in"
        [cookie] = [c for c in page.context.cookies() if c["name"].endswith("session")]
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
        assert ADMIN_TOKEN not in cookie["value"]
        page.screenshot(path=str(artifact("status_row_page.png")), full_page=True)

        # Retry the failed row.
        page.click("#retry button")
        page.wait_for_url(f"**/rows/{rows.failed}?done=retried")
        assert notice().startswith("Retried")
        [(status, attempts)] = sql(
            engine, f"SELECT status, attempts FROM outbox WHERE id = {rows.failed}"
        )
        assert (status, attempts) == ("pending", 0)
        assert page.locator("#row-status").inner_text() == "pending"

        # Unsuppress its refused Cc, from the row page.
        assert BOUNCED.lower() in suppressed()
        page.click("form.unsuppress button")
        page.wait_for_url(f"**/rows/{rows.failed}?done=unsuppressed")
        assert notice().startswith("Unsuppressed")
        assert suppressed() == [ALSO_SUPPRESSED]

        # Cancel the pending row.
        page.goto(f"{base}rows/{rows.pending}")
        page.click("#cancel button")
        page.wait_for_url(f"**/rows/{rows.pending}?done=cancelled")
        assert notice().startswith("Cancelled")
        assert status_of(rows.pending) == "cancelled"
        assert page.locator("#cancel, #retry").count() == 0

        # Unsuppress from the suppression list.
        page.goto(f"{base}suppressions")
        page.click(f'tr[data-address="{ALSO_SUPPRESSED}"] form.unsuppress button')
        page.wait_for_url("**/suppressions?done=unsuppressed")
        assert suppressed() == []
        assert page.locator("#suppressions-none").count() == 1

        # A form on another origin, even with a valid CSRF token, changes nothing.
        page.goto(f"{base}rows/{rows.sent}")
        csrf = page.locator('#logout input[name="csrf"]').get_attribute("value")
        page.goto(forged_retry(f"{base}rows/{rows.sent}/retry", csrf))
        page.click("button")
        page.wait_for_selector("#error")
        assert page.locator("#error").get_attribute("data-code") == "403"
        assert status_of(rows.sent) == "sent"

        # Log out: the actions are gone again.
        page.goto(base)
        page.click("#logout button")
        page.wait_for_selector("#login")
        assert page.locator("#logout").count() == 0
        assert page.locator("script").count() == 0
        assert dialogs == []

    # The browser named the origin on every POST, so the page checked it; the
    # forged form's came from no origin at all.
    site = base.rstrip("/")
    assert origins == [site] * 6 + ["null", site], origins
    text_log = log.read_text()
    for action, row_id in (
        ("status_retry", rows.failed),
        ("status_unsuppress", rows.failed),
        ("status_cancel", rows.pending),
        ("status_unsuppress", None),
    ):
        assert f"action={action} outbox_id={row_id}" in text_log, text_log
    assert "refused a POST: token" in text_log  # the wrong token
    assert "refused a POST: origin" in text_log  # the forged form
    for secret in (ADMIN_TOKEN, BOUNCED.lower(), ALSO_SUPPRESSED, "[address]"):
        assert secret not in text_log


def forged_retry(action: str, csrf: str | None) -> str:
    """Return a data: URL of a page, of no origin, that posts to ``action``."""
    form = (
        f'<form method="post" action="{action}">'
        f'<input type="hidden" name="csrf" value="{csrf}">'
        "<button>Win a prize</button></form>"
    )
    return "data:text/html," + urllib.parse.quote(form)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_status_page_without_a_token_in_a_browser_has_no_buttons(
    served, browser_page, engine
):
    rows = seed_action_rows(engine)
    page = browser_page

    for path in ("", f"rows/{rows.failed}", f"rows/{rows.pending}", "suppressions"):
        page.goto(served + path)

        assert page.locator('form[method="post"]').count() == 0, path
        assert page.locator("#login, #logout").count() == 0, path
        buttons = page.locator("button").all_inner_texts()
        assert buttons == (["Look up"] if path == "" else []), path
    request = urllib.request.Request(
        f"{served}rows/{rows.failed}/retry", data=b"csrf=x", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    assert refused.value.code == 404
    [(status,)] = sql(engine, f"SELECT status FROM outbox WHERE id = {rows.failed}")
    assert status == "failed"
