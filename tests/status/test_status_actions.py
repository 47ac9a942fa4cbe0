"""The status page's actions: only with the admin token and CSRF, on both databases."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from mailer_service.status_auth import LOGIN_COOKIE, SESSION_COOKIE
from mailer_service.status_page import create_status_app
from tests.status.pages import Elements, csrf_of, database_state, log_in, post_forms
from tests.support.admin import snapshot
from tests.support.status_rows import (
    ADMIN_TOKEN,
    ALSO_SUPPRESSED,
    BOUNCED,
    ActionRows,
    seed_action_rows,
    seed_status_rows,
)

ACTIONS = ("status_retry", "status_cancel", "status_unsuppress")


@pytest.fixture
def rows(engine: Engine) -> ActionRows:
    """The status page's rows and the action rows, seeded."""
    seed_status_rows(engine)
    return seed_action_rows(engine)


@pytest.fixture
def guarded(engine: Engine, rows: ActionRows) -> Iterator[FlaskClient]:
    """A client of the page with OUTBOX_ADMIN_TOKEN set, not logged in."""
    yield create_status_app(engine, ADMIN_TOKEN).test_client()


@pytest.fixture
def admin(guarded: FlaskClient) -> tuple[FlaskClient, str]:
    """A logged-in client, and the CSRF token of its forms."""
    return guarded, log_in(guarded)


def every_post(rows: ActionRows) -> list[tuple[str, dict[str, str]]]:
    """Return each action's URL and form (without a CSRF token)."""
    return [
        (f"/rows/{rows.failed}/retry", {}),
        (f"/rows/{rows.pending}/cancel", {}),
        ("/suppressions/unsuppress", {"address": BOUNCED}),
        ("/logout", {}),
    ]


def test_read_only_page_refuses_every_post_and_changes_nothing(engine, rows):
    client = create_status_app(engine).test_client()
    before = database_state(engine)

    for path, form in [*every_post(rows), ("/login", {"token": ADMIN_TOKEN})]:
        response = client.post(path, data=form)

        assert response.status_code == 404, path
        assert 'id="error"' in response.data.decode()
    assert database_state(engine) == before


def test_without_login_the_page_shows_a_login_form_and_no_actions(guarded, rows):
    for path in ("/", f"/rows/{rows.failed}", f"/rows/{rows.pending}", "/suppressions"):
        body = guarded.get(path).data.decode()

        assert [f["id"] for f in post_forms(body)] == ["login"], path
        assert "Unsuppress" not in body and "Retry now" not in body


def test_without_login_every_action_is_refused(guarded, rows, engine):
    csrf = csrf_of(guarded.get("/").data.decode())  # the login form's token
    before = database_state(engine)

    for path, form in every_post(rows):
        response = guarded.post(path, data={**form, "csrf": csrf})

        assert response.status_code == 403, path
        assert "Log in with OUTBOX_ADMIN_TOKEN first" in response.data.decode()
    assert database_state(engine) == before


def test_login_refuses_a_wrong_token(guarded, caplog):
    csrf = csrf_of(guarded.get("/").data.decode())

    for wrong in ("", ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x", "é" * 40):
        response = guarded.post("/login", data={"csrf": csrf, "token": wrong})

        assert response.status_code == 403
        assert "not the admin token" in response.data.decode()
        assert guarded.get_cookie(SESSION_COOKIE) is None
    assert ADMIN_TOKEN not in caplog.text


def test_login_refuses_a_missing_or_wrong_csrf_token(guarded):
    guarded.get("/")  # sets the login cookie

    for csrf in (None, "", "0" * 64):
        data = {"token": ADMIN_TOKEN} | ({} if csrf is None else {"csrf": csrf})
        response = guarded.post("/login", data=data)

        assert response.status_code == 403
        assert guarded.get_cookie(SESSION_COOKIE) is None


def test_login_refuses_a_browser_never_shown_the_form(engine, rows):
    client = create_status_app(engine, ADMIN_TOKEN).test_client()

    response = client.post("/login", data={"csrf": "x" * 64, "token": ADMIN_TOKEN})

    assert response.status_code == 403
    assert client.get_cookie(SESSION_COOKIE) is None


def test_login_sets_a_strict_http_only_cookie_that_is_not_the_token(guarded):
    csrf = csrf_of(guarded.get("/").data.decode())

    response = guarded.post(
        "/login", data={"csrf": csrf, "token": ADMIN_TOKEN, "next": "/suppressions"}
    )

    assert response.status_code == 303
    assert response.headers["Location"] == "/suppressions?done=logged_in"
    [cookie] = [
        c
        for c in response.headers.getlist("Set-Cookie")
        if c.startswith(SESSION_COOKIE)
    ]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert {"httponly", "samesite=strict", "path=/"} <= set(flags)
    assert ADMIN_TOKEN not in cookie
    assert guarded.get_cookie(LOGIN_COOKIE) is None  # its nonce is spent
    assert "script-src 'none'" in response.headers["Content-Security-Policy"]
    body = guarded.get("/suppressions?done=logged_in").data.decode()
    assert 'id="notice"' in body and 'id="logout"' in body


@pytest.mark.parametrize("back", ["https://evil.example/", "//evil.example", "/x"])
def test_login_sends_the_operator_back_only_to_this_sites_pages(guarded, back):
    csrf = csrf_of(guarded.get("/").data.decode())

    response = guarded.post(
        "/login", data={"csrf": csrf, "token": ADMIN_TOKEN, "next": back}
    )

    assert response.headers["Location"] == "/?done=logged_in"


def test_logged_in_page_shows_each_action_where_it_applies(admin, rows):
    client, _ = admin

    def forms(path: str) -> list[str | None]:
        body = client.get(path).data.decode()
        return [f.get("id") or f.get("class") for f in post_forms(body)]

    assert forms(f"/rows/{rows.failed}") == ["logout", "retry", "inline unsuppress"]
    assert forms(f"/rows/{rows.pending}") == ["logout", "cancel"]
    assert forms(f"/rows/{rows.sent}") == ["logout"]
    assert forms("/suppressions") == ["logout", *["inline unsuppress"] * 2]


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "wrong"])
def test_every_action_refuses_a_missing_or_wrong_csrf_token(admin, rows, engine, csrf):
    client, _ = admin
    before = database_state(engine)

    for path, form in every_post(rows):
        data = form if csrf is None else {**form, "csrf": csrf}
        response = client.post(path, data=data)

        assert response.status_code == 403, path
        assert "CSRF token is missing or wrong" in response.data.decode()
    assert database_state(engine) == before


def test_a_csrf_token_of_another_session_is_refused(admin, rows, engine):
    client, _ = admin
    other = create_status_app(engine, ADMIN_TOKEN).test_client()
    before = database_state(engine)

    response = client.post(
        f"/rows/{rows.failed}/retry", data={"csrf": log_in(other)}
    )  # fmt: skip

    assert response.status_code == 403
    assert database_state(engine) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/rows/1"},
        {"Origin": "http://evil.example", "Referer": "http://localhost/"},
    ],
)
def test_every_action_refuses_a_post_from_another_site(admin, rows, engine, headers):
    client, csrf = admin
    before = database_state(engine)

    for path, form in every_post(rows):
        response = client.post(path, data={**form, "csrf": csrf}, headers=headers)

        assert response.status_code == 403, path
        assert "posted from another site" in response.data.decode()
    assert database_state(engine) == before


def test_retry_puts_a_failed_row_back_to_pending(admin, rows, engine, caplog):
    client, csrf = admin
    caplog.set_level(logging.INFO, "mailer_service.status_actions")
    before = snapshot(engine)

    response = client.post(
        f"/rows/{rows.failed}/retry",
        data={"csrf": csrf},
        headers={"Origin": "http://localhost"},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"/rows/{rows.failed}?done=retried"
    after = snapshot(engine)
    row = after.pop(rows.failed)
    assert (row["status"], row["attempts"]) == ("pending", 0)
    due = row["available_at"].replace(tzinfo=row["available_at"].tzinfo or UTC)
    assert abs(due - datetime.now(UTC)) < timedelta(minutes=1)
    assert row["last_error"] == "554 5.7.1 rejected"  # kept until the next attempt
    del before[rows.failed]
    assert after == before
    assert logged(caplog) == [("status_retry", rows.failed)]
    shown = client.get(response.headers["Location"]).data.decode()
    assert "Retried:" in shown and 'data-status="pending"' in shown


def test_cancel_stops_a_pending_row(admin, rows, engine, caplog):
    client, csrf = admin
    caplog.set_level(logging.INFO, "mailer_service.status_actions")
    before = snapshot(engine)

    response = client.post(f"/rows/{rows.pending}/cancel", data={"csrf": csrf})

    assert response.status_code == 303
    assert response.headers["Location"] == f"/rows/{rows.pending}?done=cancelled"
    after = snapshot(engine)
    assert after.pop(rows.pending)["status"] == "cancelled"
    del before[rows.pending]
    assert after == before
    assert logged(caplog) == [("status_cancel", rows.pending)]


def test_unsuppress_from_the_row_page_logs_no_address(admin, rows, engine, caplog):
    client, csrf = admin
    caplog.set_level(logging.DEBUG, "mailer_service")
    before = database_state(engine)

    response = client.post(
        "/suppressions/unsuppress",
        data={"csrf": csrf, "address": BOUNCED.upper(), "row": str(rows.failed)},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"/rows/{rows.failed}?done=unsuppressed"
    after = database_state(engine)
    assert after[1] == [(ALSO_SUPPRESSED, "manual")]
    assert (after[0], after[2]) == (before[0], before[2])
    assert logged(caplog) == [("status_unsuppress", rows.failed)]
    for record in caplog.records:
        assert "@" not in record.getMessage()
        assert all("@" not in str(v) for v in vars(record).values() if v), record


def test_unsuppress_from_the_list_goes_back_to_the_list(admin, engine):
    client, csrf = admin

    response = client.post(
        "/suppressions/unsuppress", data={"csrf": csrf, "address": ALSO_SUPPRESSED}
    )

    assert response.headers["Location"] == "/suppressions?done=unsuppressed"
    assert database_state(engine)[1] == [(BOUNCED.lower(), "bounce")]


@pytest.mark.parametrize(
    ("path", "form", "status", "says"),
    [
        ("/rows/{pending}/retry", {}, 409, "is pending: only a failed row"),
        ("/rows/{sent}/retry", {}, 409, "is sent: only a failed row"),
        ("/rows/{failed}/cancel", {}, 409, "is failed: only a pending row"),
        ("/rows/{sent}/cancel", {}, 409, "is sent: only a pending row"),
        ("/rows/424242/retry", {}, 404, "no outbox row 424242"),
        ("/rows/424242/cancel", {}, 404, "no outbox row 424242"),
        ("/rows/abc/retry", {}, 400, "not a row id"),
        ("/rows/99999999999999999999/cancel", {}, 400, "not a row id"),
        ("/suppressions/unsuppress", {"address": "nobody@x.org"}, 404, "not on the"),
        ("/suppressions/unsuppress", {"address": " "}, 400, "Name the address"),
        ("/suppressions/unsuppress", {"address": "a" * 300}, 400, "Name the address"),
        ("/suppressions/unsuppress", {"address": BOUNCED, "row": "x"}, 400, "row id"),
    ],
)
def test_actions_in_the_wrong_state_are_refused(
    admin, rows, engine, caplog, path, form, status, says
):
    client, csrf = admin
    caplog.set_level(logging.INFO, "mailer_service.status_actions")
    before = database_state(engine)

    url = path.format(pending=rows.pending, sent=rows.sent, failed=rows.failed)
    response = client.post(url, data={**form, "csrf": csrf})

    assert response.status_code == status
    assert says in response.data.decode()
    assert database_state(engine) == before
    assert logged(caplog) == []


def test_retry_refuses_a_failed_row_whose_dedupe_key_is_queued_again(admin, engine):
    client, csrf = admin
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE outbox SET dedupe_key = 'receipt-1' WHERE status IN ('failed',"
            " 'pending') AND id IN (SELECT min(id) FROM outbox GROUP BY status)"
        )
        failed = connection.exec_driver_sql(
            "SELECT id FROM outbox WHERE dedupe_key = 'receipt-1' AND status = 'failed'"
        ).scalar_one()
    before = database_state(engine)

    response = client.post(f"/rows/{failed}/retry", data={"csrf": csrf})

    assert response.status_code == 409
    assert "dedupe key" in response.data.decode()
    assert database_state(engine) == before


def test_logout_forgets_the_session(admin, rows, engine):
    client, csrf = admin

    response = client.post("/logout", data={"csrf": csrf})

    assert response.status_code == 303
    assert client.get_cookie(SESSION_COOKIE) is None
    assert [f["id"] for f in post_forms(client.get("/").data.decode())] == ["login"]
    refused = client.post(f"/rows/{rows.failed}/retry", data={"csrf": csrf})
    assert refused.status_code == 403


def test_a_tampered_session_cookie_is_refused(admin, rows, engine):
    client, csrf = admin
    value = client.get_cookie(SESSION_COOKIE).value
    issued, nonce, mac = value.split(".")
    before = database_state(engine)

    for forged in (f"{int(issued) + 1}.{nonce}.{mac}", f"{issued}.{nonce}.{'0' * 64}"):
        client.set_cookie(SESSION_COOKIE, forged)
        response = client.post(f"/rows/{rows.failed}/retry", data={"csrf": csrf})

        assert response.status_code == 403
    assert database_state(engine) == before


def test_a_session_of_another_token_is_refused(admin, rows, engine):
    client, csrf = admin
    other = create_status_app(engine, "another-admin-token-" + "y" * 20)
    before = database_state(engine)

    with other.test_client() as stranger:
        stranger.set_cookie(SESSION_COOKIE, client.get_cookie(SESSION_COOKIE).value)
        response = stranger.post(f"/rows/{rows.failed}/retry", data={"csrf": csrf})

    assert response.status_code == 403
    assert database_state(engine) == before


def test_a_post_bigger_than_any_form_is_refused(admin, rows, engine):
    client, csrf = admin
    before = database_state(engine)

    response = client.post(
        f"/rows/{rows.failed}/retry", data={"csrf": csrf, "pad": "x" * 100_000}
    )

    assert response.status_code == 413
    assert database_state(engine) == before


def logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int | None]]:
    """Return the (action, outbox_id) of every action logged."""
    return [
        (r.action, r.outbox_id)
        for r in caplog.records
        if getattr(r, "action", None) in ACTIONS
    ]


def test_page_answers_with_the_security_headers_everywhere(admin, rows):
    client, csrf = admin
    answers = [
        client.get("/"),
        client.get("/rows/abc"),
        client.post(f"/rows/{rows.pending}/retry", data={"csrf": csrf}),
        client.post(f"/rows/{rows.pending}/cancel", data={"csrf": csrf}),
    ]

    for response in answers:
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'none'" in policy and "form-action 'self'" in policy
        assert response.headers["Cache-Control"] == "no-store"
    assert "<script" not in answers[0].data.decode()
    assert Elements(answers[0].data.decode()).find("script") == []
