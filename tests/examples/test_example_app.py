"""The converted example shop: an order and its whole mail, or neither.

The adoption story end to end: an app's own empty database gets the outbox's
tables from the real ``outbox migrate`` CLI and its own from ``init-db``; the
app queues through the unchanged ``mail.send(msg)``; a real mailer process
delivers to a real SMTP server and stops cleanly on SIGTERM.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import URL

from tests.examples.shop import (
    ORDER,
    OUTBOX_APP,
    SEED_APP,
    changed_lines,
    confirmation_summary,
    expected_confirmation,
    load_example,
    scalar,
)
from tests.support.databases import url_string
from tests.support.processes import MailerProcess
from tests.support.smtp import SmtpServer

# The most lines `diff -u` of the two apps may add or remove: the conversion is
# an import, a setting, Outbox(app, db), and the send moved into the transaction.
MAX_CHANGED_LINES = 14
DELIVERY_TIMEOUT = 60.0  # seconds from starting the mailer to the accepted DATA
POLL_INTERVAL = "0.1"  # seconds; MAILER_POLL_INTERVAL, SQLite's only wake-up


def test_example_diff_changes_few_lines() -> None:
    changed = changed_lines(SEED_APP, OUTBOX_APP)
    assert 0 < len(changed) <= MAX_CHANGED_LINES, "\n".join(changed)
    added = "\n".join(line for line in changed if line.startswith("+"))
    removed = "\n".join(line for line in changed if line.startswith("-"))
    assert "Outbox(app, db)" in added and '"OUTBOX_CAPTURE_MAIL": True' in added
    assert "Thread(" in removed and "Thread(" not in added


def test_example_app_delivers_the_whole_confirmation(
    shop_app: Flask, shop_url: URL, smtp: SmtpServer, tmp_path: Path
) -> None:
    response = shop_app.test_client().post("/orders", json=ORDER)
    assert response.status_code == 201, response.get_json()
    order_id = response.get_json()["id"]
    assert scalar(shop_url, "SELECT status FROM outbox") == "pending"

    mailer = MailerProcess(
        tmp_path / "mailer.log",
        DATABASE_URL=url_string(shop_url),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAILER_POLL_INTERVAL=POLL_INTERVAL,
    )
    try:
        assert smtp.wait_for(1, DELIVERY_TIMEOUT), mailer.log()
        assert mailer.terminate() == 0, mailer.log()
    finally:
        mailer.stop_quietly()

    [received] = smtp.received
    [message] = smtp.messages
    logo = load_example(OUTBOX_APP).LOGO_PNG
    assert confirmation_summary(received, message) == expected_confirmation(
        order_id, logo
    )
    assert scalar(shop_url, "SELECT count(*) FROM orders") == 1
    assert scalar(shop_url, "SELECT status FROM outbox") == "sent"


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("ada@example.com\r\nBcc: eve@example.com", id="crlf"),
        pytest.param("not-an-address", id="malformed"),
    ],
)
def test_example_app_refuses_an_unsendable_order_whole(
    shop_app: Flask, shop_url: URL, email: str
) -> None:
    response = shop_app.test_client().post("/orders", json={**ORDER, "email": email})

    assert response.status_code == 400
    assert response.is_json and response.get_json()["error"]
    assert scalar(shop_url, "SELECT count(*) FROM orders") == 0
    assert scalar(shop_url, "SELECT count(*) FROM outbox") == 0
