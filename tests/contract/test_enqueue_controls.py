"""Priority, scheduled sending and de-duplication through enqueue_email."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mailer_service.store import OutboxStore
from outbox_contract import enqueue_email
from tests.support.outbox import outbox_rows

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def enqueue(engine: Engine, **fields: object) -> int:
    """Enqueue one mail in its own committed transaction; return its id."""
    values = {"to": "a@example.com", "subject": "Hi", "text": "x", **fields}
    with Session(engine) as session:
        row = enqueue_email(session, **values)
        session.commit()
        return row.id


def claim(engine: Engine, batch_size: int = 100) -> list[int]:
    """Claim up to ``batch_size`` due rows as a mailer would; return their ids."""
    with engine.connect() as connection:
        rows = OutboxStore(connection, "w", 30).claim_due_rows(batch_size)
    return [row.id for row in rows]


def test_claim_sends_smaller_priority_first_then_oldest(engine: Engine) -> None:
    receipt = enqueue(engine, subject="Receipt", priority=5)
    welcome = enqueue(engine, subject="Welcome")
    reset = enqueue(engine, subject="Reset", priority=-1)
    digest = enqueue(engine, subject="Digest", priority=5)

    assert claim(engine, 1) == [reset]
    assert claim(engine, 1) == [welcome]
    assert claim(engine, 1) == [receipt]
    assert claim(engine, 1) == [digest]


def test_send_at_holds_the_mail_until_then(engine: Engine) -> None:
    later = enqueue(engine, send_at=datetime.now(UTC) + timedelta(hours=1))
    now = enqueue(engine, send_at=datetime.now(UTC) - timedelta(seconds=1))

    assert claim(engine) == [now]
    [row] = [r for r in outbox_rows(engine) if r["id"] == later]
    assert row["status"] == "pending"


def test_send_at_must_be_timezone_aware(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ValueError, match="timezone"):
        enqueue_email(
            session, to="a@example.com", subject="Hi", text="x", send_at=datetime.now()
        )


def test_priority_must_fit_a_smallint(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ValueError, match="smallint"):
        enqueue_email(
            session, to="a@example.com", subject="Hi", text="x", priority=40000
        )


def test_dedupe_key_returns_the_queued_row_and_inserts_nothing(engine: Engine) -> None:
    first = enqueue(engine, dedupe_key="reset:42")
    again = enqueue(engine, dedupe_key="reset:42", subject="Another")
    other = enqueue(engine, dedupe_key="reset:43")

    assert again == first
    assert other != first
    assert [r["subject"] for r in outbox_rows(engine)] == ["Hi", "Hi"]


def test_dedupe_key_is_free_again_once_the_row_is_sent(engine: Engine) -> None:
    first = enqueue(engine, dedupe_key="digest:2026-11-29")
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE outbox SET status = 'sent', sent_at = available_at")
        )

    second = enqueue(engine, dedupe_key="digest:2026-11-29")

    assert second != first
    assert [r["status"] for r in outbox_rows(engine)] == ["sent", "pending"]


def test_dedupe_within_the_callers_own_transaction(engine: Engine) -> None:
    with Session(engine) as session:
        first = enqueue_email(
            session, to="a@example.com", subject="Hi", text="x", dedupe_key="k"
        )
        second = enqueue_email(
            session, to="a@example.com", subject="Hi", text="y", dedupe_key="k"
        )
        session.commit()
        assert first.id == second.id
    [row] = outbox_rows(engine)
    assert row["body_text"] == "x"  # the first one's, untouched


@POSTGRES_ONLY
def test_concurrent_enqueues_of_one_key_insert_one_row(engine: Engine) -> None:
    """Eight transactions race on one key: one row, and all eight get its id."""
    start = threading.Barrier(8)
    ids: list[int] = []
    errors: list[BaseException] = []

    def producer(n: int) -> None:
        """Enqueue the shared key, holding the transaction open a moment."""
        try:
            with Session(engine) as session:
                start.wait(10)
                row = enqueue_email(
                    session, to=f"p{n}@example.com", subject="Hi", text="x",
                    dedupe_key="welcome:ada",
                )  # fmt: skip
                session.execute(text("SELECT pg_sleep(0.05)"))
                session.commit()
                ids.append(row.id)
        except BaseException as err:  # surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(outbox_rows(engine)) == 1
    assert set(ids) == {outbox_rows(engine)[0]["id"]}
