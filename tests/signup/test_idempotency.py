"""Idempotency-Key on POST /signup: replay, conflict, races, expiry and purge."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import URL, DateTime, Engine, bindparam, create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from outbox_contract.database import prepare_engine
from tests.signup.test_api import counts, rows

KEY = "3f1c9c1e-7a51-4a52-9d39-0c4d0c1b6f0e"


def keyed(key: str = KEY) -> dict[str, str]:
    """Return the headers of a request with an Idempotency-Key."""
    return {"Idempotency-Key": key}


def key_count(engine: Engine) -> int:
    """Return the number of stored keys."""
    return rows(engine, "SELECT count(*) FROM idempotency_keys")[0][0]


def age_keys(engine: Engine, hours: float) -> None:
    """Make every stored key ``hours`` old."""
    statement = text("UPDATE idempotency_keys SET created_at = :when").bindparams(
        bindparam("when", type_=DateTime(timezone=True))
    )
    with engine.begin() as connection:
        connection.execute(
            statement, {"when": datetime.now(UTC) - timedelta(hours=hours)}
        )


@pytest.fixture
def fk_engine(database_url: URL):
    """An engine that enforces foreign keys on SQLite too, as the services' do."""
    engine = prepare_engine(create_engine(database_url, poolclass=NullPool))
    yield engine
    engine.dispose()


def test_idempotency_same_key_and_body_replays_and_writes_nothing(client, engine):
    body = {"email": "ada@example.com", "name": "Ada"}
    first = client.post("/signup", json=body, headers=keyed())

    again = client.post("/signup", json=body, headers=keyed())

    assert first.status_code == again.status_code == 201
    assert again.data == first.data
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert counts(engine) == (1, 1)
    assert key_count(engine) == 1


def test_idempotency_replay_ignores_json_key_order_and_spacing(client, engine):
    client.post(
        "/signup", json={"email": "a@example.com", "name": "A"}, headers=keyed()
    )

    again = client.post(
        "/signup",
        data='{ "name": "A",   "email": "a@example.com" }',
        content_type="application/json",
        headers=keyed(),
    )

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert counts(engine) == (1, 1)


def test_idempotency_form_post_replays(client, engine):
    first = client.post("/signup", data={"email": "f@example.com"}, headers=keyed())
    again = client.post("/signup", data={"email": "f@example.com"}, headers=keyed())

    assert (first.status_code, again.data) == (201, first.data)
    assert counts(engine) == (1, 1)


def test_idempotency_same_key_other_body_is_422(client, engine):
    client.post("/signup", json={"email": "a@example.com"}, headers=keyed())

    response = client.post("/signup", json={"email": "b@example.com"}, headers=keyed())

    assert response.status_code == 422
    assert "different request body" in response.get_json()["error"]
    assert counts(engine) == (1, 1)


def test_idempotency_failed_request_stores_nothing_so_a_fix_can_reuse_the_key(
    client, engine
):
    bad = client.post("/signup", json={"email": "nope"}, headers=keyed())
    fixed = client.post("/signup", json={"email": "ok@example.com"}, headers=keyed())

    assert (bad.status_code, fixed.status_code) == (422, 201)
    assert key_count(engine) == 1


def test_idempotency_taken_email_with_a_new_key_is_409(client, engine):
    client.post("/signup", json={"email": "a@example.com"})

    response = client.post("/signup", json={"email": "a@example.com"}, headers=keyed())

    assert response.status_code == 409
    assert key_count(engine) == 0


def test_idempotency_different_keys_are_independent(client, engine):
    for n in range(3):
        response = client.post(
            "/signup", json={"email": f"u{n}@example.com"}, headers=keyed(f"key-{n}")
        )
        assert response.status_code == 201
    assert counts(engine) == (3, 3)
    assert key_count(engine) == 3


def test_idempotency_without_key_behaves_as_before(client, engine):
    assert client.post("/signup", json={"email": "a@example.com"}).status_code == 201
    assert client.post("/signup", json={"email": "a@example.com"}).status_code == 409
    assert key_count(engine) == 0


@pytest.mark.parametrize("value", ["", " ", "x" * 256, "ключ", "a b", "tab\there"])
def test_idempotency_malformed_key_is_400(client, engine, value):
    response = client.post(
        "/signup", json={"email": "a@example.com"}, headers={"Idempotency-Key": value}
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["error"]
    assert counts(engine) == (0, 0)


def test_idempotency_key_of_255_characters_is_fine(client):
    response = client.post(
        "/signup", json={"email": "a@example.com"}, headers=keyed("k" * 255)
    )

    assert response.status_code == 201


def test_idempotency_key_after_24_hours_is_new_again(client, engine):
    client.post("/signup", json={"email": "a@example.com"}, headers=keyed())
    age_keys(engine, hours=25)

    same = client.post("/signup", json={"email": "a@example.com"}, headers=keyed())
    other = client.post("/signup", json={"email": "b@example.com"}, headers=keyed())

    assert same.status_code == 409  # no replay: it runs, and the email is taken
    assert other.status_code == 201  # and the key is free for a new body
    assert counts(engine) == (2, 2)
    assert key_count(engine) == 1


def test_idempotency_key_goes_with_its_user(client, engine, fk_engine):
    client.post("/signup", json={"email": "a@example.com"}, headers=keyed())
    with fk_engine.begin() as connection:
        connection.execute(text("DELETE FROM users"))

    assert key_count(engine) == 0


def test_idempotency_key_cannot_exist_without_a_user(fk_engine):
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        with fk_engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO idempotency_keys"
                    " (key, request_hash, user_id, response_status, response_body)"
                    " VALUES ('k', 'h', 999, 201, '{}')"
                )
            )


def test_purge_idempotency_keys_deletes_only_expired_ones(app, engine):
    client = app.test_client()
    client.post("/signup", json={"email": "old@example.com"}, headers=keyed("old"))
    age_keys(engine, hours=25)
    client.post("/signup", json={"email": "new@example.com"}, headers=keyed("new"))

    result = app.test_cli_runner().invoke(args=["purge-idempotency-keys"])

    assert result.exit_code == 0, result.output
    assert "purged 1 expired idempotency keys" in result.output
    assert rows(engine, "SELECT key FROM idempotency_keys") == [("new",)]
    assert counts(engine) == (2, 2)  # users and their mail stay


def test_purge_idempotency_keys_is_listed_in_help(app):
    result = app.test_cli_runner().invoke(args=["--help"])

    assert "purge-idempotency-keys" in result.output


def race(app, bodies: list[dict], key: str) -> list[int]:
    """POST ``bodies`` at once from threads, all with ``key``; return statuses."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict) -> int:
        client = app.test_client()
        barrier.wait()
        return client.post("/signup", json=body, headers=keyed(key)).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        return sorted(pool.map(post, bodies))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_idempotency_concurrent_same_key_and_body_make_one_user(app, engine):
    for attempt in range(5):  # several rounds, to meet the race in its forms
        key = str(uuid.uuid4())
        body = {"email": f"race{attempt}@example.com"}

        statuses = race(app, [body] * 6, key)

        assert statuses[0] == 201 and set(statuses) <= {201, 409}, statuses
        assert rows(
            engine,
            f"SELECT count(*) FROM users WHERE email = 'race{attempt}@example.com'",
        ) == [(1,)]
    assert counts(engine) == (5, 5)
    assert key_count(engine) == 5


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_idempotency_concurrent_same_key_other_bodies_make_one_user(app, engine):
    bodies = [{"email": f"twin{n}@example.com"} for n in range(6)]

    statuses = race(app, bodies, KEY)

    assert statuses.count(201) == 1
    assert set(statuses) <= {201, 409, 422}, statuses
    assert counts(engine) == (1, 1)
    assert key_count(engine) == 1


def test_idempotency_concurrent_requests_never_fail_on_sqlite_either(
    make_app_for, sqlite_template, tmp_path
):
    app = make_app_for(sqlite_template.create_database(tmp_path))

    statuses = race(app, [{"email": "s@example.com"}] * 4, KEY)

    assert statuses[0] == 201 and set(statuses) <= {201, 409}, statuses
