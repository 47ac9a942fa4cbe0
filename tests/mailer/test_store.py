"""The claim, lease and fence SQL, against real databases."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from mailer_service.sql import load_queries
from mailer_service.store import Completion, OutboxStore
from tests.support import ROOT
from tests.support.outbox import LONG_AGO, outbox_rows, seed_outbox, set_timestamp

QUERIES = ROOT / "mailer_service" / "queries"


@pytest.fixture
def stores(engine):
    """Return a factory of stores, each with its own connection, for two workers."""
    connections: list[Connection] = []

    def make(mailer_id: str, lease_seconds: float = 30) -> OutboxStore:
        connections.append(engine.connect())
        return OutboxStore(connections[-1], mailer_id, lease_seconds)

    yield make
    for connection in connections:
        connection.close()


# The fleet-wide limits need PostgreSQL; the mailer refuses them on SQLite.
POSTGRESQL_ONLY = ["take_send_turn", "take_connection_slot", "give_connection_slot"]
# PostgreSQL writes a whole flush of outcomes in one statement (UPDATE over
# unnest() inside WITH); SQLite cannot, so it has one statement per result and
# writes the attempt row separately.
POSTGRESQL_BATCH = ["complete"]
CLAIM_DUE = load_queries("delivery_postgresql")["claim_due"]
SQLITE_ONLY = ["mark_sent", "mark_retry", "mark_failed", "mark_suppressed"]
SQLITE_ONLY += ["record_attempt"]


def finish(
    store: OutboxStore,
    row_id: int,
    result: str,
    error: str | None = None,
    delay_seconds: float = 0.0,
) -> bool:
    """Write one outcome as the completer does; tell whether the row was ours."""
    return row_id in store.complete([Completion(row_id, result, error, delay_seconds)])


def test_both_dialects_define_the_same_statements():
    names = {
        path.stem: re.findall(r"^-- name: (\w+) --$", path.read_text(), re.M)
        for path in QUERIES.glob("*.sql")
        if path.stem.startswith("delivery_")
    }
    sqlite = [n for n in names["delivery_sqlite"] if n not in SQLITE_ONLY]
    postgresql = [n for n in names["delivery_postgresql"] if n not in POSTGRESQL_BATCH]
    assert postgresql == sqlite + POSTGRESQL_ONLY
    assert set(load_queries("delivery_sqlite")) == set(names["delivery_sqlite"])


@pytest.mark.parametrize("purpose", ["inspect", "repair", "retention"])
def test_operator_sql_defines_the_same_statements_on_both_dialects(purpose):
    names = {
        dialect: re.findall(
            r"^-- name: (\w+) --$",
            (QUERIES / f"{purpose}_{dialect}.sql").read_text(),
            re.M,
        )
        for dialect in ("postgresql", "sqlite")
    }
    assert names["postgresql"] == names["sqlite"]
    assert names["postgresql"]  # the file is there and has statements


def test_claim_leases_due_rows_to_the_worker(stores, engine):
    seed_outbox(engine, 3)

    claimed = stores("a").claim_due_rows(2)

    assert [row.id for row in claimed] == [1, 2]
    assert claimed[0].recipient == "r0@example.com"
    rows = outbox_rows(engine)
    assert [(r["status"], r["locked_by"]) for r in rows] == [
        ("sending", "a"),
        ("sending", "a"),
        ("pending", None),
    ]
    assert rows[0]["locked_until"] is not None


def test_claim_never_takes_a_live_lease(stores, engine):
    seed_outbox(engine, 2)
    stores("a").claim_due_rows(10)

    assert stores("b").claim_due_rows(10) == []


def test_claim_takes_expired_leases_first_come(stores, engine):
    seed_outbox(engine, 2)
    stores("a").claim_due_rows(10)
    set_timestamp(engine, "locked_until", LONG_AGO, "id = 1")

    claimed = stores("b").claim_due_rows(10)

    assert [row.id for row in claimed] == [1]
    assert [r["locked_by"] for r in outbox_rows(engine)] == ["b", "a"]


def test_fence_stops_a_worker_whose_lease_expired(stores, engine):
    """Worker a stalls past its lease, b takes the row: a can no longer touch it."""
    seed_outbox(engine, 1)
    a, b = stores("a"), stores("b")
    [row] = a.claim_due_rows(1)
    set_timestamp(engine, "locked_until", LONG_AGO)
    assert [r.id for r in b.claim_due_rows(1)] == [row.id]

    assert a.extend_leases([row.id]) == set()
    assert finish(a, row.id, "sent") is False
    assert finish(a, row.id, "retry", "451 late", 10) is False
    assert finish(a, row.id, "failed", "550 late") is False
    assert a.release([row.id]) == 0
    [state] = outbox_rows(engine)
    assert (state["status"], state["locked_by"], state["attempts"]) == (
        "sending",
        "b",
        0,
    )

    assert finish(b, row.id, "sent") is True
    [state] = outbox_rows(engine)
    assert (state["status"], state["locked_by"], state["attempts"]) == ("sent", None, 1)


def test_finished_rows_cannot_be_finished_again(stores, engine):
    seed_outbox(engine, 1)
    a = stores("a")
    [row] = a.claim_due_rows(1)

    assert finish(a, row.id, "sent") is True
    assert finish(a, row.id, "failed", "late") is False
    assert outbox_rows(engine)[0]["status"] == "sent"


def test_extend_leases_moves_the_deadline(stores, engine):
    seed_outbox(engine, 2)
    a = stores("a", lease_seconds=5)
    a.claim_due_rows(2)
    set_timestamp(engine, "locked_until", LONG_AGO, "id = 1")

    a.lease_seconds = 3600
    assert a.extend_leases([1, 2]) == {1, 2}

    first, second = outbox_rows(engine)
    assert not str(first["locked_until"]).startswith("2000")
    assert first["locked_until"] == second["locked_until"]


def test_release_returns_rows_without_charging(stores, engine):
    seed_outbox(engine, 3)
    a = stores("a")
    a.claim_due_rows(3)

    assert a.release([2, 3]) == 2

    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"], r["locked_by"]) for r in rows] == [
        ("sending", 0, "a"),
        ("pending", 0, None),
        ("pending", 0, None),
    ]
    assert [r["last_attempt_at"] for r in rows] == [None, None, None]


def test_retry_schedules_the_row_in_the_future(stores, engine):
    seed_outbox(engine, 1)
    a = stores("a")
    a.claim_due_rows(1)

    assert finish(a, 1, "retry", "451 later", 3600) is True

    assert a.claim_due_rows(1) == []
    [row] = outbox_rows(engine)
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "pending",
        1,
        "451 later",
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_claim_skips_rows_locked_by_another_transaction(engine, database_url):
    """SKIP LOCKED: a claim never waits for, nor takes, a row another claim holds."""
    seed_outbox(engine, 4)
    # Were the claim to wait for the lock, it would fail after 2 s instead of hanging.
    impatient = create_engine(
        database_url, poolclass=NullPool, connect_args={"options": "-c lock_timeout=2s"}
    )
    with engine.connect() as holder, impatient.connect() as connection:
        holder.execute(text("SELECT id FROM outbox WHERE id IN (1, 2) FOR UPDATE"))

        claimed = OutboxStore(connection, "a", 30).claim_due_rows(10)

        holder.rollback()
    impatient.dispose()
    assert [row.id for row in claimed] == [3, 4]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_claim_uses_the_due_index(engine, database_url):
    seed_outbox(engine, 50)
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        plan = connection.execute(
            text(f"EXPLAIN {CLAIM_DUE}"),
            {"mailer_id": "x", "lease_seconds": 1, "batch_size": 5},
        ).scalars()
        plan_text = "\n".join(plan)
        connection.rollback()
    assert "ix_outbox_due" in plan_text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_claim_reads_its_batch_off_the_index_without_sorting_the_backlog(engine):
    """A backlog costs a claim nothing: the index is the claim's own order."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox (recipient, subject, body_text, message_id)"
                " SELECT 'r@example.com', 's', 'b', '<' || g || '@example.com>'"
                " FROM generate_series(1, 20000) AS g"
            )
        )
    with engine.connect() as connection:
        connection.execute(text("COMMIT"))
        connection.execute(text("ANALYZE outbox"))
        plan = "\n".join(
            connection.execute(
                text(f"EXPLAIN {CLAIM_DUE}"),
                {"mailer_id": "x", "lease_seconds": 1, "batch_size": 20},
            ).scalars()
        )
        connection.rollback()

    assert "Index Scan using ix_outbox_due" in plan
    assert "Sort" not in plan, plan
