"""The outbox_summary view gives the same answers on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from outbox_contract import STATUSES, Outbox
from outbox_contract import migrate as outbox_migrate
from tests.support.delivery_states import seed_every_state

QUERY = text(
    "SELECT status, total, oldest_due_age_seconds, failed_last_hour FROM outbox_summary"
)


def summary(engine: Engine) -> list[tuple]:
    """Return the view's rows in the order the view gives them."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(QUERY)]


def assert_age_between(age: int, least: timedelta, elapsed: timedelta) -> None:
    """Check a whole-second age read somewhere within ``elapsed`` after ``least``."""
    # One second of slack each way: SQLite's julianday() is a float.
    assert least.total_seconds() - 1 <= age
    assert age <= (least + elapsed).total_seconds() + 1


def test_outbox_summary_counts_each_status(database_url, engine):
    now = seed_every_state(engine)

    rows = summary(engine)

    elapsed = datetime.now(UTC) - now
    assert_age_between(rows[0][2], timedelta(hours=3), elapsed)
    assert [rows[0][:2] + rows[0][3:], *rows[1:]] == [
        ("pending", 3, None),
        ("sending", 2, None, None),
        ("sent", 1, None, None),
        ("failed", 2, None, 1),  # failed 20 minutes ago; the other 3 days ago
        ("cancelled", 0, None, None),
        ("suppressed", 0, None, None),
    ]


def test_outbox_summary_counts_failures_by_their_last_attempt(database_url, engine):
    """A row due hours ago that failed minutes ago is a recent failure."""
    now = datetime.now(UTC)
    insert_pending(
        engine,
        status="failed",
        available_at=now - timedelta(hours=3),
        last_attempt_at=now - timedelta(minutes=5),
    )
    insert_pending(
        engine,
        status="failed",
        message_id="<2@example.com>",
        available_at=now - timedelta(minutes=5),
        last_attempt_at=now - timedelta(hours=2),
    )

    assert summary(engine)[3] == ("failed", 2, None, 1)


def test_outbox_summary_lists_every_status_when_empty(database_url, engine):
    assert summary(engine) == [
        ("pending", 0, None, None),
        ("sending", 0, None, None),
        ("sent", 0, None, None),
        ("failed", 0, None, 0),
        ("cancelled", 0, None, None),
        ("suppressed", 0, None, None),
    ]


def test_outbox_summary_ignores_pending_rows_not_yet_due(database_url, engine):
    later = datetime.now(UTC) + timedelta(minutes=5)
    insert_pending(engine, available_at=later)

    assert summary(engine)[0] == ("pending", 1, None, None)


def test_outbox_summary_sees_a_signup_row_as_due_at_once(database_url, engine):
    """Rows take available_at from the server default, as signups write them."""
    before = datetime.now(UTC)
    insert_pending(engine)

    status, total, age, _ = summary(engine)[0]

    assert (status, total) == ("pending", 1)
    assert_age_between(age, timedelta(0), datetime.now(UTC) - before)


def test_outbox_summary_follows_the_outbox_history(database_url, engine):
    """Its statuses are the schema's: four before outbox_0003, six after."""
    outbox_migrate.run(database_url, "downgrade", "outbox_0002")
    before = [row[0] for row in summary(engine)]
    outbox_migrate.run(database_url)

    assert before == ["pending", "sending", "sent", "failed"]
    assert [row[0] for row in summary(engine)] == list(STATUSES)


def insert_pending(engine: Engine, **values: datetime | str) -> None:
    """Insert one row, pending unless told; unset times take the defaults."""
    row = {
        "recipient": "ada@example.com",
        "subject": "Welcome aboard!",
        "body_text": "Hello",
        "message_id": "<1@example.com>",
        **values,
    }
    with engine.begin() as connection:
        connection.execute(Outbox.__table__.insert(), [row])
