"""What the claim statement costs as ``sent`` history piles up in the outbox.

In a database of its own, the mailer's ``claim_due`` statement (loaded by name,
as the mailer loads it) is timed over many runs, each in its own transaction
rolled back afterwards, so every run sees the same rows: first with only the
pending rows, then with the same pending rows behind a million ``sent`` ones,
inserted first as older history would be. Both after ``VACUUM ANALYZE``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Connection, TextClause, create_engine, text
from sqlalchemy.pool import NullPool

from bench import database
from bench.load import percentile
from bench.messages import HTML, SUBJECT, TEXT
from mailer_service.store import load_queries

WARMUP_RUNS = 20  # unmeasured claims first: caches and plans settle
# A rolled-back claim still leaves 20 dead row versions and their index
# entries behind, all for the same rows: left alone they would pile up over
# the runs and be what is measured. An unmeasured VACUUM clears them.
VACUUM_EVERY = 25  # runs
# What the mailer binds by default (MAILER_BATCH_SIZE, MAILER_LEASE_SECONDS).
DEFAULT_PARAMS: dict[str, object] = {
    "worker_id": "bench-claim",
    "batch_size": 20,  # rows per claim
    "lease_seconds": 120.0,  # seconds
}

# Rows shaped like real ones; history is older than the queue, as in real life.
FILL = """
INSERT INTO outbox (created_at, available_at, status, recipient, subject,
                    body_text, body_html, message_id, attempts,
                    last_attempt_at, sent_at)
SELECT now() - make_interval(secs => :count - g + :age),
       now() - make_interval(secs => :count - g + :age),
       CAST(:status AS text), CAST(:prefix AS text) || g || '@example.com',
       :subject, :body_text, :body_html,
       '<' || CAST(:prefix AS text) || g || '@example.com>', :attempts,
       CASE WHEN :sent THEN now() - make_interval(secs => :count - g) END,
       CASE WHEN :sent THEN now() - make_interval(secs => :count - g) END
FROM generate_series(1, CAST(:count AS integer)) AS g
"""


@dataclass(frozen=True)
class ClaimCost:
    """Claim latencies (ms) without and with history, and the plan with it."""

    pending: int
    history: int
    empty_ms: list[float] = field(default_factory=list)
    history_ms: list[float] = field(default_factory=list)
    explain: str = ""  # EXPLAIN (ANALYZE, BUFFERS) of one claim, with history

    def ratio(self, q: float) -> float:
        """Return the ``q``-th percentile with history over the one without."""
        empty = percentile(self.empty_ms, q)
        return percentile(self.history_ms, q) / empty if empty else 0.0


def claim_params(
    clause: TextClause, extra: dict[str, object] | None = None
) -> dict[str, object]:
    """Bind every parameter the claim names: defaults, then ``extra``.

    Built from the statement's own parameters, so a parameter it drops is not
    passed, and one it adds fails here with its name instead of mid-run.
    """
    names = set(clause.compile().params)
    values = {**DEFAULT_PARAMS, **(extra or {})}
    missing = sorted(names - values.keys())
    if missing:
        raise ValueError(
            f"claim_due needs {', '.join(missing)}: pass --claim-param NAME=VALUE"
        )
    return {name: values[name] for name in names}


def _fill(connection: Connection, status: str, count: int, age: float) -> None:
    """Insert ``count`` rows of ``status``, the newest ``age`` seconds old."""
    connection.execute(
        text(FILL),
        {
            "count": count,
            "age": age,
            "status": status,
            "prefix": f"claim-{status}-",
            "subject": SUBJECT,
            "body_text": TEXT.format(email="someone@example.com"),
            "body_html": HTML.format(email="someone@example.com"),
            "attempts": 1 if status == "sent" else 0,
            "sent": status == "sent",
        },
    )


def _time_claims(
    setup: Connection,
    connection: Connection,
    clause: TextClause,
    params: dict[str, object],
    runs: int,
) -> list[float]:
    """Run the claim ``runs`` times, each rolled back; return latencies in ms."""
    latencies = []
    for run in range(WARMUP_RUNS + runs):
        if run % VACUUM_EVERY == 0:
            _vacuum(setup)
        transaction = connection.begin()
        started = time.perf_counter()
        claimed = connection.execute(clause, params).all()
        took = time.perf_counter() - started
        transaction.rollback()  # the next run sees the same rows
        if not claimed:
            raise RuntimeError("the claim found no due row to measure")
        if run >= WARMUP_RUNS:
            latencies.append(took * 1000)
    return latencies


def _explain(
    connection: Connection, clause: TextClause, params: dict[str, object]
) -> str:
    """Return EXPLAIN (ANALYZE, BUFFERS) of one claim, rolled back."""
    transaction = connection.begin()
    try:
        plan = connection.execute(
            text(f"EXPLAIN (ANALYZE, BUFFERS) {clause.text}"), params
        )
        return "\n".join(row[0] for row in plan)
    finally:
        transaction.rollback()


def _vacuum(setup: Connection) -> None:
    """VACUUM ANALYZE the outbox, as autovacuum eventually would."""
    setup.execute(text("VACUUM ANALYZE outbox"))


def measure_claim_cost(
    admin_url: str,
    runs: int,
    pending: int,
    history: int,
    extra: dict[str, object] | None = None,
) -> ClaimCost:
    """Time the claim with ``pending`` rows, then behind ``history`` sent rows."""
    clause = load_queries("postgresql")["claim_due"]
    params = claim_params(clause, extra)
    with database.fresh_database(admin_url) as url:
        # Autocommit for the fills and VACUUM (which refuses a transaction);
        # the timed claims need real transactions, to roll them back.
        admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        engine = create_engine(url, poolclass=NullPool)
        try:
            with admin.connect() as setup, engine.connect() as connection:
                _fill(setup, "pending", pending, age=1.0)
                empty_ms = _time_claims(setup, connection, clause, params, runs)
                setup.execute(text("TRUNCATE outbox"))
                _fill(setup, "sent", history, age=float(pending))
                _fill(setup, "pending", pending, age=1.0)
                history_ms = _time_claims(setup, connection, clause, params, runs)
                _vacuum(setup)
                explain = _explain(connection, clause, params)
        finally:
            admin.dispose()
            engine.dispose()
    return ClaimCost(pending, history, empty_ms, history_ms, explain)
