"""Double opt-in: the signed link in the welcome mail, GET shows, POST confirms."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import time
import zlib
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import Engine, text

from signup_service.tokens import make_confirm_token

LINK = re.compile(r"(https?://\S+/confirm/\S+)")
JSON = {"Accept": "application/json"}
# The salt of the tokens mailed before they stopped carrying the address; such
# links were sent already and must keep working until they expire.
OLD_SALT = "signup.confirm-email"
EIGHT_DAYS = 8 * 24 * 3600  # seconds, past the default CONFIRM_MAX_AGE


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


def old_token(app: Flask, user_id: int, email: str, age: int = 0) -> str:
    """Return a link token the way it was made before: ``[user_id, email]``."""

    class Backdated(TimestampSigner):
        """A signer whose clock runs ``age`` seconds late."""

        def get_timestamp(self) -> int:
            """Return the time ``age`` seconds ago."""
            return int(time.time()) - age

    secret = app.config["SECRET_KEY"]
    serializer = URLSafeTimedSerializer(secret, salt=OLD_SALT, signer=Backdated)
    return serializer.dumps([user_id, email])


def decodings(token: str) -> list[bytes]:
    """Return each dot-separated segment of ``token`` base64url-decoded."""
    found = []
    for segment in token.split("."):
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except binascii.Error:  # not base64 at all, so it hides nothing
            continue
        found.append(raw)
        # itsdangerous deflates the payload (and marks it with a leading dot)
        # whenever that makes it shorter; most segments are not zlib data.
        with contextlib.suppress(zlib.error):
            found.append(zlib.decompress(raw))
    return found


def reveals(link: str, email: str) -> bool:
    """Tell whether ``email`` or its local part can be read from ``link``."""
    token = urlsplit(link).path.rpartition("/")[2]
    needles = [email.lower(), email.partition("@")[0].lower()]
    texts = [link.lower(), *(raw.lower().decode("latin-1") for raw in decodings(token))]
    return any(needle in text for needle in needles for text in texts)


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


# Local parts long and dotted enough never to turn up in a token by chance; the
# second is repetitive enough for itsdangerous to compress it.
ADDRESSES = ["grace.hopper@example.com", "hopper.hopper.hopper.hopper@example.com"]


@pytest.mark.parametrize("email", ADDRESSES)
def test_confirm_link_carries_no_address(client, engine, email):
    link = mailed_link(engine, sign_up(client, email))

    assert not reveals(link, email)


@pytest.mark.parametrize("email", ADDRESSES)
def test_reveals_finds_the_address_in_an_old_token(app, email):
    token = old_token(app, 1, email)

    assert reveals(f"http://127.0.0.1:8000/confirm/{token}", email)
    # The check must also see through itsdangerous' compression.
    assert token.startswith(".") == (email == ADDRESSES[1])


def test_confirm_token_binds_the_address_with_a_key(make_app):
    payloads = []
    for key in ["a" * 32, "a" * 32, "b" * 32]:
        with make_app(SECRET_KEY=key).app_context():
            payloads.append(make_confirm_token(1, "ada@example.com").split(".")[0])

    # Without the key nobody can test a guessed address against a link.
    assert payloads[0] == payloads[1] != payloads[2]


def test_confirm_link_to_a_changed_address_is_404(client, engine):
    user_id = sign_up(client)
    path = urlsplit(mailed_link(engine, user_id)).path
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE users SET email = 'ada@example.net' WHERE id = :id"),
            {"id": user_id},
        )

    assert client.get(path).status_code == 404
    assert client.post(path, headers=JSON).get_json() == {
        "error": "this account no longer exists"
    }
    assert confirmed_at(engine, user_id) is None


def test_confirm_old_link_still_confirms(app, client, engine):
    user_id = sign_up(client)
    path = f"/confirm/{old_token(app, user_id, 'ada@example.com')}"

    assert client.get(path).status_code == 200
    response = client.post(path, headers=JSON)

    assert response.status_code == 200
    assert response.get_json()["confirmed_at"] is not None
    assert confirmed_at(engine, user_id) is not None


def test_confirm_old_link_expires_with_410(app, client, engine):
    user_id = sign_up(client)
    path = f"/confirm/{old_token(app, user_id, 'ada@example.com', EIGHT_DAYS)}"

    assert client.get(path).status_code == 410
    assert client.post(path, headers=JSON).get_json() == {
        "error": "this confirmation link has expired"
    }
    assert confirmed_at(engine, user_id) is None


def test_confirm_old_link_to_another_address_is_404(app, client, engine):
    user_id = sign_up(client)
    path = f"/confirm/{old_token(app, user_id, 'ada@example.net')}"

    assert client.post(path).status_code == 404
    assert confirmed_at(engine, user_id) is None


def test_confirm_tampered_old_link_is_400(app, client, engine):
    user_id = sign_up(client)
    token = old_token(app, user_id, "ada@example.com")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    assert client.post(f"/confirm/{tampered}").status_code == 400
    assert confirmed_at(engine, user_id) is None
