"""A person confirms their address in a real browser (Debian's headless Chromium).

The whole path is real: the signup service answers over HTTP, the mailer
(``python -m mailer_service --once``) delivers the welcome mail to an SMTP
sink, and Chromium, driven by Playwright, opens the mail's link and clicks the
button. Screenshots land in ``var/artifacts/`` for a human to look at.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool
from werkzeug.serving import make_server

from tests.support.browser import require_browser
from tests.support.databases import url_string
from tests.support.processes import ROOT, child_env, free_port
from tests.support.smtp import SmtpServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "var" / "artifacts"
MAILER_TIMEOUT = 120.0  # seconds for one `--once` delivery on a busy machine
PAGE_TIMEOUT = 30_000  # milliseconds for each browser step

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _chromium() -> None:
    """Skip (fail in CI) where Debian's Chromium or Playwright is missing."""
    require_browser()


@pytest.fixture
def signup_server(pg_url: URL, make_app_for) -> Iterator[str]:
    """The signup app served over HTTP on a free port; its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = make_app_for(pg_url, PUBLIC_BASE_URL=base)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium from Debian, never a browser Playwright downloads."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def sign_up(base: str, email: str) -> int:
    """POST a JSON signup; return the user's id."""
    request = urllib.request.Request(
        f"{base}/signup",
        data=json.dumps({"email": email, "name": "Ada"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.loads(response.read())["id"]


def deliver_once(url: URL, smtp: SmtpServer) -> None:
    """Run the real mailer once against ``smtp``."""
    result = subprocess.run(
        [sys.executable, "-m", "mailer_service", "--once"],
        cwd=ROOT,
        env=child_env(
            DATABASE_URL=url_string(url),
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(smtp.port),
        ),
        capture_output=True,
        text=True,
        timeout=MAILER_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr


def mailed_link(smtp: SmtpServer) -> str:
    """Return the confirmation link of the one welcome mail the sink received."""
    [message] = smtp.messages
    body = message.get_body(preferencelist=("plain",)).get_content()
    [link] = re.findall(r"https?://\S+/confirm/\S+", body)
    return link


def confirmed_at(url: URL, user_id: int):
    """Return ``users.confirmed_at`` of ``user_id``."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT confirmed_at FROM users WHERE id = :id"), {"id": user_id}
            ).scalar_one()
    finally:
        engine.dispose()


def screenshot(page, name: str) -> Path:
    """Save the page as ``var/artifacts/<name>.png``; return the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_browser_confirms_the_address_from_the_welcome_mail(
    signup_server, pg_url, browser
):
    with SmtpServer() as smtp:
        user_id = sign_up(signup_server, "ada@example.com")
        deliver_once(pg_url, smtp)
        link = mailed_link(smtp)
    assert link.startswith(f"{signup_server}/confirm/")
    page = browser.new_page()
    page.set_default_timeout(PAGE_TIMEOUT)

    opened = page.goto(link)

    # Opening the link is what a mail scanner does too: it must change nothing.
    assert opened is not None and opened.status == 200
    assert "frame-ancestors 'none'" in opened.headers["content-security-policy"]
    assert confirmed_at(pg_url, user_id) is None
    screenshot(page, "confirm-before")

    page.get_by_role("button", name="Confirm my address").click()
    page.get_by_text("is confirmed").wait_for()

    assert page.url == link  # the button posted back to the same URL
    assert confirmed_at(pg_url, user_id) is not None
    assert screenshot(page, "confirm-after").stat().st_size > 0


def test_browser_plain_get_of_the_link_leaves_it_unconfirmed(
    signup_server, pg_url, browser
):
    with SmtpServer() as smtp:
        user_id = sign_up(signup_server, "grace@example.com")
        deliver_once(pg_url, smtp)
        link = mailed_link(smtp)
    page = browser.new_page()

    for _ in range(2):  # a link preview, then the person
        assert page.goto(link).status == 200
    with urllib.request.urlopen(link, timeout=30) as response:  # a scanner
        assert response.status == 200

    assert page.get_by_role("button", name="Confirm my address").is_visible()
    assert confirmed_at(pg_url, user_id) is None
