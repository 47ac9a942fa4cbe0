"""The page per row and the suppression list, read-only, on both databases."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from mailer_service.status_page import create_status_app
from tests.status.pages import Elements, post_forms
from tests.support.status_rows import (
    ALSO_SUPPRESSED,
    BOUNCED,
    HOSTILE_RECIPIENT,
    LOOKED_UP,
    ActionRows,
    seed_action_rows,
    seed_status_rows,
)


@pytest.fixture
def rows(engine: Engine) -> ActionRows:
    """The status page's rows and the action rows, seeded."""
    seed_status_rows(engine)
    return seed_action_rows(engine)


@pytest.fixture
def page(engine: Engine, rows: ActionRows) -> Iterator[FlaskClient]:
    """A test client of the read-only page (no OUTBOX_ADMIN_TOKEN)."""
    yield create_status_app(engine).test_client()


def section(body: str, element_id: str) -> str:
    """Return the HTML from ``id="element_id"`` to the end of its table."""
    start = body.index(f'id="{element_id}"')
    return body[start : body.index("</table>", start)]


def test_row_page_shows_headers_recipients_attachments_and_history(page, rows):
    body = page.get(f"/rows/{rows.failed}").data.decode()

    headers = section(body, "headers")
    assert "Your receipt" in headers
    assert "Shop &lt;shop@example.com&gt;" in headers
    assert "help@example.com" in headers
    assert "<th>X-Campaign</th><td>receipts</td>" in headers
    assert "@example.com&gt;</td>" in headers  # the Message-ID
    html = Elements(body)
    recipients = html.find("tr", data_kind="to") + html.find("tr", data_kind="cc")
    assert [r["data-outcome"] for r in recipients] == ["failed", "refused"]
    assert [r["data-outcome"] for r in html.find("tr", data_kind="bcc")] == ["failed"]
    assert "Ada Lovelace" in body and "audit@example.com" in body
    assert "550 5.1.1 user unknown" in section(body, "recipients")
    assert body.count("on the suppression list") == 1  # the Cc, BOUNCED
    assert len(html.find("td", data_bytes="2048")) == 1
    assert "r.pdf" in section(body, "attachments")
    history = [(a.get("data-attempt"), a.get("data-result")) for a in html.find("tr")]
    assert [h for h in history if h[0]] == [("1", "retry"), ("2", "failed")]
    assert "451 4.3.0 try later" in section(body, "history")


def test_row_page_shows_a_plain_row_without_history(page, rows):
    body = page.get(f"/rows/{rows.pending}").data.decode()

    assert 'id="history-none"' in body and 'id="attachments-none"' in body
    assert 'data-status="pending"' in body


def test_row_page_shows_an_unreadable_row_as_stored_and_escaped(page, engine):
    with engine.connect() as connection:
        hostile = connection.execute(
            text("SELECT id FROM outbox WHERE recipient = :r"),
            {"r": HOSTILE_RECIPIENT},
        ).scalar_one()

    response = page.get(f"/rows/{hostile}")

    body = response.data.decode()
    assert response.status_code == 200
    assert 'id="unreadable"' in body
    assert "<script" not in body.lower()
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;@example.com" in body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/rows/abc", 400),
        ("/rows/0", 400),
        ("/rows/-1", 400),
        ("/rows/1.5", 400),
        ("/rows/%EF%BC%91", 400),  # a full-width digit one: not ASCII
        ("/rows/99999999999999999999", 400),  # past a bigint
        ("/rows/" + "9" * 5000, 400),  # past Python's int-parsing limit
        ("/rows/9223372036854775807", 404),
        ("/rows/424242", 404),
        ("/no-such-page", 404),
    ],
)
def test_row_page_answers_bad_ids_with_a_4xx_page(page, path, status):
    response = page.get(path)

    assert response.status_code == status
    [heading] = Elements(response.data.decode()).find("h1", id="error")
    assert heading["data-code"] == str(status)
    assert "script-src 'none'" in response.headers["Content-Security-Policy"]


def test_status_page_links_rows_from_failures_and_lookup(page, rows):
    failures = section(page.get("/").data.decode(), "failures")
    lookup = page.get("/", query_string={"recipient": LOOKED_UP}).data.decode()

    assert f'<a href="/rows/{rows.failed}">{rows.failed}</a>' in failures
    linked = re.findall(r'<a href="/rows/(\d+)">', section(lookup, "lookup-results"))
    assert len(linked) == 2
    for row_id in linked:
        assert page.get(f"/rows/{row_id}").status_code == 200


def test_status_page_says_a_looked_up_address_is_suppressed(page):
    body = page.get("/", query_string={"recipient": BOUNCED.upper()}).data.decode()

    assert 'id="lookup-suppressed"' in body


def test_suppressions_page_lists_the_entries(page):
    body = page.get("/suppressions").data.decode()

    listed = [a.get("data-address") for a in Elements(body).find("tr") if a]
    assert sorted(listed) == sorted([BOUNCED.lower(), ALSO_SUPPRESSED])
    assert "user unknown" in body and "550 5.1.1" in body


def test_suppressions_page_says_when_the_list_is_empty(engine):
    body = create_status_app(engine).test_client().get("/suppressions").data.decode()

    assert 'id="suppressions-none"' in body


def test_read_only_pages_have_no_post_forms_and_set_no_cookie(page, rows):
    for path in ("/", f"/rows/{rows.failed}", f"/rows/{rows.pending}", "/suppressions"):
        response = page.get(path)
        body = response.data.decode()

        assert post_forms(body) == [], path
        assert 'id="login"' not in body
        # The lookup's GET form is the only form, and its button the only one.
        assert [f.get("id") for f in Elements(body).find("form")] == (
            ["lookup"] if path == "/" else []
        )
        assert body.count("<button") == (1 if path == "/" else 0), path
        assert "Set-Cookie" not in response.headers
