"""Double opt-in: the signed link in the welcome mail, GET shows, POST confirms."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

LINK = re.compile(r"(https?://\S+/confirm/\S+)")
JSON = {"Accept": "application/json"}


def sign_up(client: FlaskClient, email: str = "ada@example.com") -> int:
    """Sign ``email`` up; return the new user's id."""
    response = client.post("/signup", json={"email": email, "name": "Ada"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def mailed_link(engine: Engine, user_id: int) -> str:
    """Return the confirmation link of ``user_id``'s welcome mail."""
    with engine.connect() as connection:
        body_text, body_html = connection.execute(
            text(
                "SELECT body_text, body_html FROM outbox"
                " WHERE dedupe_key = 'welcome:' || :id"
            ),
            {"id": user_id},
        ).one()
    [link] = LINK.findall(body_text)
    assert f'href="{link}"' in body_html
    return link


def confirmed_at(engine: Engine, user_id: int):
    """Return ``users.confirmed_at`` of ``user_id``."""
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT confirmed_at FROM users WHERE id = :id"), {"id": user_id}
        ).scalar_one()


def test_welcome_mail_links_to_public_base_url(make_app, engine):
    app = make_app(PUBLIC_BASE_URL="https://signup.example.org/")
    user_id = sign_up(app.test_client())

    link = mailed_link(engine, user_id)

    assert link.startswith("https://signup.example.org/confirm/")
    assert "//confirm" not in link


def test_confirm_link_defaults_to_the_make_run_address(client, engine):
    link = mailed_link(engine, sign_up(client))

    assert link.startswith("http://127.0.0.1:8000/confirm/")


def test_confirm_get_shows_a_button_and_changes_nothing(client, engine):
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path

    for _ in range(3):  # a mail scanner, a link preview, the user
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        assert b"Confirm my address" in response.data
        assert b'method="post"' in response.data

    assert confirmed_at(engine, user_id) is None


def test_confirm_post_sets_confirmed_at(client, engine):
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path

    response = client.post(path)

    assert response.status_code == 200
    assert b"is confirmed" in response.data
    assert confirmed_at(engine, user_id) is not None


def test_confirm_twice_is_harmless(client, engine):
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path
    client.post(path)
    first = confirmed_at(engine, user_id)

    again = client.post(path, headers=JSON)

    assert again.status_code == 200
    assert again.get_json()["confirmed_at"] is not None
    assert confirmed_at(engine, user_id) == first
    assert b"already confirmed" in client.get(path).data


def test_confirm_answers_json_when_asked(client, engine):
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path

    shown = client.get(path, headers=JSON)
    confirmed = client.post(path, headers=JSON)

    assert shown.get_json() == {
        "id": user_id,
        "email": "ada@example.com",
        "confirmed_at": None,
    }
    assert confirmed.mimetype == "application/json"
    assert confirmed.get_json()["id"] == user_id
    assert confirmed.get_json()["confirmed_at"].endswith("+00:00")


@pytest.mark.parametrize("method", ["get", "post"])
def test_confirm_tampered_token_is_400(client, engine, method):
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path
    tampered = path[:-2] + ("AA" if not path.endswith("AA") else "BB")

    page = getattr(client, method)(tampered)
    data = getattr(client, method)(tampered, headers=JSON)

    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert b"not valid" in page.data
    assert data.status_code == 400
    assert data.get_json() == {"error": "this confirmation link is not valid"}
    assert confirmed_at(engine, user_id) is None


@pytest.mark.parametrize("token", ["x", "a.b.c", "../../etc/passwd", "é"])
def test_confirm_garbage_token_is_400(client, token):
    assert client.get(f"/confirm/{token}").status_code == 400
    assert client.post(f"/confirm/{token}", headers=JSON).status_code == 400


def test_confirm_token_signed_with_another_key_is_400(make_app, engine):
    user_id = sign_up(make_app().test_client())
    path = urlsplit(mailed_link(engine, user_id)).path
    other = make_app(SECRET_KEY="another-secret-key-that-is-long-enough-42")

    assert other.test_client().post(path).status_code == 400
    assert confirmed_at(engine, user_id) is None


def test_confirm_expired_token_is_410(make_app, engine):
    client = make_app(CONFIRM_MAX_AGE="1").test_client()
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path
    time.sleep(2.1)  # token timestamps have one-second resolution

    page = client.post(path)
    data = client.get(path, headers=JSON)

    assert page.status_code == 410
    assert b"expired" in page.data
    assert data.status_code == 410
    assert data.get_json() == {"error": "this confirmation link has expired"}
    assert confirmed_at(engine, user_id) is None


def test_confirm_link_of_a_deleted_user_is_404(client, engine):
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})

    assert client.get(path).status_code == 404
    assert client.post(path, headers=JSON).get_json() == {
        "error": "this account no longer exists"
    }


def test_confirm_pages_send_strict_security_headers(client, engine):
    path = urlsplit(mailed_link(engine, sign_up(client))).path

    for response in (client.get(path), client.post(path), client.get("/confirm/x")):
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "form-action 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"


def test_confirm_page_has_no_inline_script_or_style(client, engine):
    page = client.get(urlsplit(mailed_link(engine, sign_up(client))).path).data

    assert b"<script" not in page
    assert b"style" not in page
