"""The SQL in docs/operations.md's "Checking delivery state" section is true.

Each ```sql block of that section is run as pasted (no parameter parsing)
against a PostgreSQL database seeded with a row in every state, and its result
is checked exactly; the database's own now() is read in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import Engine

from outbox_contract import Outbox
from tests.support import ROOT
from tests.support.delivery_states import (
    CC_ADA,
    DAY,
    HOUR,
    MINUTE,
    REFUSED,
    SENT_AT,
    seed_every_state,
)

OPERATIONS_DOC = ROOT / "docs" / "operations.md"
SECTION = "## Checking delivery state with SQL"


def documented_queries() -> list[str]:
    """Return the ```sql blocks of the documented section, in order."""
    text = OPERATIONS_DOC.read_text()
    start = text.index(SECTION + "\n")
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"^```sql\n(.*?)^```$", section, re.M | re.S)


def run_as_pasted(engine: Engine, sql: str) -> tuple[datetime, list[tuple]]:
    """Run ``sql`` verbatim in a fresh transaction; return now() and the rows."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT now()")
        (db_now,) = cursor.fetchone()
        cursor.execute(sql)  # no parameters: psycopg sends the text unparsed
        rows = cursor.fetchall()
        cursor.close()
        connection.rollback()
    finally:
        connection.close()
    return db_now, rows


def counts_by_status(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: every status with its count, alphabetically."""
    return [("failed", 2), ("pending", 3), ("sending", 2), ("sent", 1)]


def oldest_due_age(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: row 2, due three hours before seeding, is the oldest due."""
    return [(db_now - (now - 3 * HOUR),)]


def failed_rows(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: both failed rows with their attempts and errors."""
    return [
        (5, "other5@example.com", 10, now - 20 * MINUTE, "421 busy"),
        (6, "other6@example.com", 1, now - 3 * DAY, "550 5.1.1 no such user"),
    ]


def users_welcome_mail(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: Ada's one welcome mail, delivered."""
    return [("ada@example.com", 1, "sent", 1, now - 2 * DAY, now + SENT_AT, None)]


def mail_to_an_address(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: Ada's welcome (To) and row 3, where she is in Cc and refused."""
    return [
        (1, "sent", "ada@example.com", None, None),
        (3, "pending", "linus@example.com", CC_ADA["cc"], REFUSED[3]),
    ]


def attempt_history(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: row 6's one attempt, the hard bounce."""
    at = now - 3 * DAY
    return [(1, at, "worker-dead", "failed", 550, "5.1.1", "550 5.1.1 no such user")]


def stuck_in_sending(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: only row 8, whose worker died; row 7's lease is still running."""
    expired = now - 10 * MINUTE
    return [(8, "worker-dead", expired, db_now - expired)]


def summary_view(now: datetime, db_now: datetime) -> list[tuple]:
    """Expected: the outbox_summary view's four rows, in lifecycle order."""
    age = int((db_now - (now - 3 * HOUR)).total_seconds())
    return [
        ("pending", 3, age, None),
        ("sending", 2, None, None),
        ("sent", 1, None, None),
        ("failed", 2, None, 1),  # row 5 only: row 6 was due three days ago
        ("cancelled", 0, None, None),
        ("suppressed", 0, None, None),
    ]


EXPECTED: list[Callable[[datetime, datetime], list[tuple]]] = [
    counts_by_status,
    oldest_due_age,
    failed_rows,
    users_welcome_mail,
    mail_to_an_address,
    attempt_history,
    stuck_in_sending,
    summary_view,
]


def test_operations_doc_documents_every_query():
    # Deleting or adding a query must come with its expected result below.
    assert len(documented_queries()) == len(EXPECTED) == 8


@pytest.mark.parametrize(
    "index", range(len(EXPECTED)), ids=lambda i: EXPECTED[i].__name__
)
def test_documented_query_returns_the_documented_answer(pg_engine, index):
    now = seed_every_state(pg_engine)
    sql = documented_queries()[index]

    db_now, rows = run_as_pasted(pg_engine, sql)

    assert rows == EXPECTED[index](now, db_now)


def test_documented_stuck_query_is_empty_when_leases_are_live(pg_engine):
    """The negative case's counterpart: a healthy outbox shows no stuck rows."""
    seed_every_state(pg_engine)
    with pg_engine.begin() as connection:
        connection.execute(Outbox.__table__.delete().where(Outbox.id == 8))

    _, rows = run_as_pasted(pg_engine, documented_queries()[6])

    assert rows == []
