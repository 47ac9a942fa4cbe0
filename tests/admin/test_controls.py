"""``outbox cancel`` and the suppression list's commands, and cancel_email from code."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from outbox_contract import cancel_email
from tests.support.admin import outbox, seed, snapshot


def test_cancel_stops_a_pending_row_and_nothing_else(database_url, engine):
    seed(engine)
    before = snapshot(engine)

    result = outbox(database_url, "cancel", "1")

    assert (result.exit_code, result.stdout) == (0, "cancelled 1: 1\n")
    after = snapshot(engine)
    assert after.pop(1)["status"] == "cancelled"
    del before[1]
    assert after == before


def test_cancel_refuses_rows_past_stopping_and_exits_1(database_url, engine):
    seed(engine)
    before = snapshot(engine)

    result = outbox(database_url, "cancel", "3", "7", "8", "99", "2")

    assert result.exit_code == 1
    assert result.stdout == "cancelled 1: 2\n"
    assert result.stderr.splitlines() == [
        "not cancelled: 3 is sending",
        "not cancelled: 7 is sent",
        "not cancelled: 8 is failed",
        "not cancelled: 99 does not exist",
    ]
    after = snapshot(engine)
    assert after.pop(2)["status"] == "cancelled"
    del before[2]
    assert after == before


def test_cancel_email_joins_the_callers_transaction(engine):
    seed(engine)
    with Session(engine) as session:
        result = cancel_email(session, [1, 2, 7])
        session.rollback()

    assert result.cancelled == [1, 2]
    assert result.not_cancelled == {7: "sent"}
    assert snapshot(engine)[1]["status"] == "pending"  # rolled back with the caller


def test_suppress_unsuppress_and_list(database_url, engine):
    added = outbox(database_url, "suppress", "Ann@Example.com", "--detail", "asked")
    twice = outbox(database_url, "suppress", "ann@example.com")
    listed = outbox(database_url, "suppressions", "--json")

    assert (added.exit_code, added.stdout) == (0, "suppressed\n")
    assert twice.stdout == "already suppressed\n"
    [entry] = json.loads(listed.stdout)
    assert (entry["address"], entry["reason"], entry["detail"]) == (
        "ann@example.com",
        "manual",
        "asked",
    )
    removed = outbox(database_url, "unsuppress", "ANN@example.com")
    missing = outbox(database_url, "unsuppress", "ann@example.com")
    assert (removed.exit_code, removed.stdout) == (0, "unsuppressed\n")
    assert missing.exit_code == 1
    assert json.loads(outbox(database_url, "suppressions", "--json").stdout) == []


def test_suppress_refuses_what_is_not_an_address(database_url, engine: Engine):
    result = outbox(database_url, "suppress", "not an address")

    assert result.exit_code == 2
    assert "not an email address" in result.stderr
