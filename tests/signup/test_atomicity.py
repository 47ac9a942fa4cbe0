"""The user row and its outbox row commit together or not at all (PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import URL, Engine, text
from werkzeug.exceptions import InternalServerError

from tests.support.outbox import counts, rows


@pytest.fixture
def pg_client(pg_url: URL, make_app_for):
    """A signup client on the same PostgreSQL database as ``pg_engine``."""
    return make_app_for(pg_url).test_client()


def execute(engine: Engine, sql: str) -> None:
    """Run DDL or DML in its own transaction."""
    with engine.begin() as connection:
        connection.execute(text(sql))


def test_outbox_insert_failure_leaves_no_user(pg_client, pg_engine, caplog):
    execute(
        pg_engine,
        "ALTER TABLE outbox ADD CONSTRAINT rigged"
        " CHECK (recipient <> 'boom@example.com')",
    )

    response = pg_client.post("/signup", json={"email": "boom@example.com"})

    assert response.status_code == 500
    # The generic 500 text: nothing of the database error reaches the client.
    assert response.get_json() == {"error": InternalServerError.description}
    assert counts(pg_engine) == (0, 0)
    # The next signup still works: the failed transaction left nothing behind.
    assert (
        pg_client.post("/signup", json={"email": "ok@example.com"}).status_code == 201
    )
    assert counts(pg_engine) == (1, 1)


def test_user_insert_failure_leaves_no_outbox_row(pg_client, pg_engine):
    execute(
        pg_engine,
        "ALTER TABLE users ADD CONSTRAINT rigged CHECK (email <> 'boom@example.com')",
    )

    response = pg_client.post("/signup", json={"email": "boom@example.com"})

    assert response.status_code == 500
    assert counts(pg_engine) == (0, 0)


def test_failure_at_commit_rolls_back_both_rows(pg_client, pg_engine):
    """Both INSERTs succeed, then COMMIT fails: neither row may survive."""
    execute(
        pg_engine,
        """
        CREATE FUNCTION reject_boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.email = 'boom@example.com' THEN
                RAISE EXCEPTION 'rigged' USING ERRCODE = 'check_violation';
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER reject_boom AFTER INSERT ON users
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reject_boom();
        """,
    )

    response = pg_client.post("/signup", json={"email": "boom@example.com"})

    assert response.status_code == 500
    assert counts(pg_engine) == (0, 0)


def test_every_201_has_exactly_one_outbox_row(pg_client, pg_engine):
    created = set()
    for i in range(30):
        response = pg_client.post(
            "/signup", json={"email": f"user{i % 20}@example.com"}
        )
        assert response.status_code in (201, 409)
        if response.status_code == 201:
            created.add(response.get_json()["id"])

    per_user = rows(
        pg_engine,
        "SELECT u.id, count(o.id) FROM users u"
        " LEFT JOIN outbox o ON o.dedupe_key = 'welcome:' || u.id GROUP BY u.id",
    )
    assert {user_id for user_id, _ in per_user} == created
    assert all(n == 1 for _, n in per_user)
    assert counts(pg_engine) == (20, 20)
