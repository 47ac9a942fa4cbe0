"""POST /signup and the health checks, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from signup_service import create_app
from tests.support.apps import TEST_APP_ENV
from tests.support.outbox import counts, rows
from tests.support.processes import free_port, wait_until
from tests.support.smtp import HangingServer


def test_signup_json_writes_user_and_pending_email(client, engine):
    response = client.post(
        "/signup", json={"email": "  Ada.Lovelace@Example.COM ", "name": "Ada"}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "ada.lovelace@example.com"
    assert body["name"] == "Ada"
    [(user_id, email, name)] = rows(engine, "SELECT id, email, name FROM users")
    assert (user_id, email, name) == (body["id"], body["email"], "Ada")
    [outbox] = rows(
        engine,
        "SELECT dedupe_key, recipient, status, attempts, message_id, subject,"
        " body_text, body_html, locked_by, sent_at FROM outbox",
    )
    assert outbox[:4] == (
        f"welcome:{user_id}",
        "ada.lovelace@example.com",
        "pending",
        0,
    )
    assert outbox[4].startswith("<") and outbox[4].endswith("@example.com>")
    assert outbox[5] == "Welcome aboard!"
    assert "Hello Ada," in outbox[6]
    assert "<p>Hello Ada,</p>" in outbox[7]
    assert outbox[8:] == (None, None)


def test_signup_form_post_like_the_seed(client, engine):
    response = client.post("/signup", data={"email": "form@example.com"})

    assert response.status_code == 201
    assert response.get_json()["email"] == "form@example.com"
    assert counts(engine) == (1, 1)


def test_signup_message_ids_are_unique(client, engine):
    for i in range(5):
        assert (
            client.post("/signup", json={"email": f"u{i}@example.com"}).status_code
            == 201
        )

    ids = [row[0] for row in rows(engine, "SELECT message_id FROM outbox")]
    assert len(set(ids)) == 5


def test_signup_name_is_escaped_in_html(client, engine):
    name = '<script>alert("x")</script>'
    assert (
        client.post(
            "/signup", json={"email": "x@example.com", "name": name}
        ).status_code
        == 201
    )

    [(body_text, body_html)] = rows(engine, "SELECT body_text, body_html FROM outbox")
    assert "<script>" not in body_html
    assert "&lt;script&gt;" in body_html
    assert name in body_text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": "{not json", "content_type": "application/json"}, "not valid JSON"),
        ({"data": b"\xff\xfe", "content_type": "application/json"}, "not valid JSON"),
        ({"json": ["a@example.com"]}, "JSON object"),
        ({"json": "a@example.com"}, "JSON object"),
        ({"json": None}, "Content-Type"),
        ({"data": "email=a@example.com", "content_type": "text/plain"}, "Content-Type"),
        ({"data": "email=a@example.com"}, "Content-Type"),
    ],
)
def test_signup_unreadable_body_is_400(client, engine, kwargs, message):
    response = client.post("/signup", **kwargs)

    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert counts(engine) == (0, 0)


@pytest.mark.parametrize("kind", ["json", "form"])
def test_signup_body_over_64_kib_is_413(client, engine, kind):
    padding = "x" * (64 * 1024)
    if kind == "json":
        response = client.post(
            "/signup", json={"email": "a@example.com", "pad": padding}
        )
    else:
        response = client.post(
            "/signup", data={"email": "a@example.com", "pad": padding}
        )

    assert response.status_code == 413
    assert "at most 65536 bytes" in response.get_json()["error"]
    assert counts(engine) == (0, 0)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"email": ""},
        {"email": "   "},
        {"email": 42},
        {"email": ["a@example.com"]},
        {"email": None},
        {"email": "not-an-address"},
        {"email": "a@example.com\r\nBcc: victim@example.com"},
        {"email": "a@example.com\n"},
        {"email": "a\0@example.com"},
        {"email": "Mallory <m@example.com>"},
        {"email": "a@example.com, b@example.com"},
        {"email": "a@example.com;b@example.com"},
        {"email": "ü@example.com"},
        {"email": "a@localhost"},
        {"email": "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "example.com"},
        {"email": "x" * 250 + "@example.com"},
        {"email": "ok@example.com", "name": 7},
        {"email": "ok@example.com", "name": "Eve\r\nBcc: v@example.com"},
        {"email": "ok@example.com", "name": "n" * 101},
    ],
)
def test_signup_invalid_fields_are_422(client, engine, fields):
    response = client.post("/signup", json=fields)

    assert response.status_code == 422
    assert response.get_json()["error"]
    assert counts(engine) == (0, 0)


def test_signup_idn_domain_is_stored_as_ascii(client, engine):
    response = client.post("/signup", json={"email": "user@bücher.example"})

    assert response.status_code == 201
    assert response.get_json()["email"] == "user@xn--bcher-kva.example"


def test_signup_duplicate_email_is_409_ignoring_case(client, engine):
    assert client.post("/signup", json={"email": "dup@example.com"}).status_code == 201

    response = client.post("/signup", json={"email": "DUP@Example.com"})

    assert response.status_code == 409
    assert response.get_json() == {"error": "email is already registered"}
    assert counts(engine) == (1, 1)


def test_signup_concurrent_duplicates_give_one_201(app, engine):
    """Eight requests race on one address: exactly one wins, the rest get 409."""
    barrier = threading.Barrier(8)

    def post(_: int) -> int:
        client = app.test_client()
        barrier.wait()
        return client.post("/signup", json={"email": "race@example.com"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(post, range(8)))

    assert statuses == [201] + [409] * 7
    assert counts(engine) == (1, 1)


def test_unknown_route_and_method_answer_json(client):
    assert client.get("/nope").status_code == 404
    assert "error" in client.get("/nope").get_json()
    response = client.get("/signup")
    assert response.status_code == 405
    assert "error" in response.get_json()


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    response = client.get("/readyz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ready"})


def test_readyz_is_503_when_database_is_unreachable():
    port = free_port()  # nobody listens there
    app = create_app(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/none?connect_timeout=2",
            **TEST_APP_ENV,
        }
    )

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"error": "database unreachable"}
    assert app.test_client().get("/healthz").status_code == 200


def test_signup_is_503_when_database_is_unreachable():
    port = free_port()  # nobody listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/none?connect_timeout=2"
    app = create_app({"DATABASE_URL": url, **TEST_APP_ENV})

    response = app.test_client().post("/signup", json={"email": "a@example.com"})

    assert response.status_code == 503
    assert response.get_json() == {"error": "database unavailable, try again later"}
    assert response.headers["Retry-After"] == "5"


@pytest.mark.timeout(60)  # a send on the request path would hang, not fail
def test_signup_never_touches_smtp(make_app):
    """The request path must not connect to the mail server, however slow it is."""
    with HangingServer() as silent:
        app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(silent.port))
        for i in range(3):
            response = app.test_client().post(
                "/signup", json={"email": f"n{i}@example.com"}
            )
            assert response.status_code == 201
        # A send would have connected before answering; let the server accept it.
        connected = wait_until(lambda: silent.accepted, timeout=0.5)

    assert not connected
