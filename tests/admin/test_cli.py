"""The ``outbox`` admin CLI changes exactly the rows it names, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from mailer_service.admin import format_age
from outbox_contract import Outbox
from tests.support.admin import OLD_SENT, outbox, seed, snapshot
from tests.support.databases import url_string


def utc(value: datetime) -> datetime:
    """Read SQLite's naive UTC timestamps and PostgreSQL's aware ones alike."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_stats_counts_rows_per_status(database_url, engine):
    before = seed(engine)

    result = outbox(database_url, "stats", "--json")
    after = datetime.now(UTC)

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    age = rows[0].pop("oldest_due_age_seconds")
    # Row 1 became due two hours before seeding; the age is read between the two.
    assert 7200 - 1 <= age <= 7200 + (after - before).total_seconds() + 1
    assert rows == [
        {"status": "pending", "total": 2, "failed_last_hour": None},
        {"status": "sending", "total": 1, "oldest_due_age_seconds": None,
         "failed_last_hour": None},
        {"status": "sent", "total": 6, "oldest_due_age_seconds": None,
         "failed_last_hour": None},
        {"status": "failed", "total": 2, "oldest_due_age_seconds": None,
         "failed_last_hour": 1},
        {"status": "cancelled", "total": 0, "oldest_due_age_seconds": None,
         "failed_last_hour": None},
        {"status": "suppressed", "total": 0, "oldest_due_age_seconds": None,
         "failed_last_hour": None},
    ]  # fmt: skip


def test_stats_prints_a_table(database_url, engine):
    seed(engine)

    result = outbox(database_url, "stats")

    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["status", "total", "oldest", "due", "failed", "last", "hour"]
    assert lines[1][:3] == ["pending", "2", "2h"]
    assert lines[2:] == [["sending", "1", "-", "-"], ["sent", "6", "-", "-"],
                         ["failed", "2", "-", "1"], ["cancelled", "0", "-", "-"],
                         ["suppressed", "0", "-", "-"]]  # fmt: skip


def test_format_age_shows_the_two_largest_units():
    assert format_age(None) == "-"
    assert format_age(0) == "0s"
    assert format_age(59) == "59s"
    assert format_age(3600 + 5) == "1h 5s"
    assert format_age(2 * 86400 + 3 * 3600 + 4 * 60) == "2d 3h"


def test_retry_puts_one_failed_row_back_to_pending(database_url, engine):
    seed(engine)
    before = snapshot(engine)
    started = datetime.now(UTC)

    result = outbox(database_url, "retry", "8")

    assert result.exit_code == 0, result.output
    assert result.stdout == "retried 1: 8\n"
    after = snapshot(engine)
    retried = after.pop(8)
    assert retried["status"] == "pending"
    assert retried["attempts"] == 0
    assert retried["last_error"] == "550 no such user"  # kept, documented
    slack = timedelta(seconds=1)  # SQLite's clock keeps milliseconds only
    assert started - slack <= utc(retried["available_at"])
    assert utc(retried["available_at"]) <= datetime.now(UTC) + slack
    del before[8]
    assert after == before


def test_retry_reports_rows_it_cannot_retry_and_fails(database_url, engine):
    seed(engine)
    before = snapshot(engine)

    result = outbox(database_url, "retry", "7", "9", "99", "2", "9")

    assert result.exit_code == 1
    assert result.stdout == "retried 1: 9\n"
    assert result.stderr.splitlines() == [
        "not retried: 2 is pending",
        "not retried: 7 is sent",
        "not retried: 99 does not exist",
    ]
    after = snapshot(engine)
    assert (after[9]["status"], after[9]["attempts"]) == ("pending", 0)
    del before[9], after[9]
    assert after == before


def test_requeue_failed_moves_every_failed_row(database_url, engine):
    seed(engine)
    before = snapshot(engine)

    result = outbox(database_url, "requeue-failed")

    assert result.exit_code == 0, result.output
    assert result.stdout == "requeued 2 failed rows\n"
    after = snapshot(engine)
    for row_id in (8, 9):
        assert (after[row_id]["status"], after[row_id]["attempts"]) == ("pending", 0)
        del before[row_id], after[row_id]
    assert after == before


@pytest.mark.parametrize("since", ["1h", "30m", "2d"])
def test_requeue_failed_since_takes_only_recent_failures(database_url, engine, since):
    seed(engine)
    before = snapshot(engine)

    result = outbox(database_url, "requeue-failed", "--since", since)

    assert result.exit_code == 0, result.output
    assert result.stdout == "requeued 1 failed rows\n"
    after = snapshot(engine)
    assert (after[8]["status"], after[8]["attempts"]) == ("pending", 0)
    del before[8], after[8]
    assert after == before  # row 9 failed 60 days ago and stays failed


def test_purge_deletes_old_sent_rows_in_batches(database_url, engine):
    seed(engine)
    before = snapshot(engine)

    result = outbox(
        database_url, "purge", "--sent-older-than", "30d", "--batch-size", "2"
    )

    assert result.exit_code == 0, result.output
    # Five old sent rows in batches of two: 2 + 2 + 1.
    assert result.stdout == "purged 5 sent rows in 3 batch(es)\n"
    # Pending, sending and failed rows older than 30 days (1, 3, 9) all remain.
    assert snapshot(engine) == {k: v for k, v in before.items() if k not in OLD_SENT}

    again = outbox(database_url, "purge", "--sent-older-than", "12h")
    assert again.stdout == "purged 1 sent rows in 1 batch(es)\n"
    assert set(snapshot(engine)) == {1, 2, 3, 8, 9}


def test_purge_skips_rows_locked_by_others_without_waiting(pg_url):
    engine = create_engine(pg_url, poolclass=NullPool)
    seed(engine)
    with engine.connect() as holder:
        # A mailer mid-claim on row 3, and someone holding old sent row 4.
        holder.execute(text("SELECT id FROM outbox WHERE id IN (3, 4) FOR UPDATE"))
        # Were purge to wait for a lock, it would fail here instead of hanging.
        result = outbox(pg_url, "purge", "--sent-older-than", "30d",
                        PGOPTIONS="-c lock_timeout=30s")  # fmt: skip
        holder.rollback()
    remaining = set(snapshot(engine))
    again = outbox(pg_url, "purge", "--sent-older-than", "30d")
    final = set(snapshot(engine))
    engine.dispose()

    assert result.exit_code == 0, result.output
    assert result.stdout == "purged 4 sent rows in 1 batch(es)\n"
    assert remaining == {1, 2, 3, 4, 7, 8, 9}
    assert again.stdout == "purged 1 sent rows in 1 batch(es)\n"
    assert final == {1, 2, 3, 7, 8, 9}


def test_console_script_runs_stats(database_url, engine):
    seed(engine)
    script = Path(sys.executable).parent / "outbox"

    done = subprocess.run(
        [str(script), "stats"],
        env={"DATABASE_URL": url_string(database_url), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[4].split() == ["failed", "2", "-", "1"]


def test_module_runs_as_outbox():
    done = subprocess.run(
        [sys.executable, "-m", "mailer_service.admin", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: outbox ")


def test_requeue_failed_since_goes_by_the_last_attempt(database_url, engine):
    """A row due long ago that failed a minute ago is a recent failure."""
    now = seed(engine)
    with engine.begin() as connection:
        connection.execute(
            Outbox.__table__.update()
            .where(Outbox.id == 9)
            .values(last_attempt_at=now - timedelta(minutes=1))
        )

    result = outbox(database_url, "requeue-failed", "--since", "1h")

    assert result.stdout == "requeued 2 failed rows\n"
    assert [snapshot(engine)[i]["status"] for i in (8, 9)] == ["pending", "pending"]
