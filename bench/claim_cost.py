"""What the claim statement costs as ``sent`` history piles up in the outbox.

Two databases of their own: one holds only the pending rows, the other the
same pending rows behind a million ``sent`` ones, inserted first as older
history would be; both are vacuumed and analyzed. The mailer's ``claim_due``
statement (loaded by name, as the mailer loads it) is timed over many runs,
each in its own transaction rolled back afterwards, so every run sees the
same rows. The runs alternate between the two databases: on a shared
machine, both sides of the ratio then see the same noise.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, TextClause, create_engine, text
from sqlalchemy.pool import NullPool

from bench import database
from bench.load import percentile
from bench.messages import HTML, SUBJECT, TEXT
from mailer_service.sql import load_queries

WARMUP_RUNS = 20  # unmeasured claims first: caches and plans settle
# A rolled-back claim still leaves 20 dead row versions and their index
# entries behind, all for the same rows: left alone they would pile up over
# the runs and be what is measured. An unmeasured VACUUM clears them.
VACUUM_EVERY = 25  # runs
# What the mailer binds by default (MAILER_BATCH_SIZE, MAILER_LEASE_SECONDS).
DEFAULT_PARAMS: dict[str, object] = {
    "mailer_id": "bench-claim",
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


@dataclass
class _Side:
    """One database of the comparison: a connection to fill, one to time."""

    setup: Connection  # autocommit: fills and VACUUM, which refuses a transaction
    timed: Connection  # real transactions, so each claim can be rolled back
    latencies: list[float] = field(default_factory=list)  # ms

    def time_claim(self, clause: TextClause, params: dict[str, object]) -> float:
        """Run the claim once, rolled back; return its latency in ms."""
        transaction = self.timed.begin()
        started = time.perf_counter()
        claimed = self.timed.execute(clause, params).all()
        took = time.perf_counter() - started
        transaction.rollback()  # the next run sees the same rows
        if not claimed:
            raise RuntimeError("the claim found no due row to measure")
        return took * 1000


@contextmanager
def _side(admin_url: str) -> Iterator[_Side]:
    """Create and migrate a database; yield its two connections; drop it."""
    with ExitStack() as stack:
        url = stack.enter_context(database.fresh_database(admin_url))
        setup = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        stack.callback(setup.dispose)
        timed = create_engine(url, poolclass=NullPool)
        stack.callback(timed.dispose)
        yield _Side(
            stack.enter_context(setup.connect()), stack.enter_context(timed.connect())
        )


def _time_alternately(
    sides: list[_Side], clause: TextClause, params: dict[str, object], runs: int
) -> None:
    """Time ``runs`` claims on each side, one side after the other."""
    for run in range(WARMUP_RUNS + runs):
        for side in sides:
            if run % VACUUM_EVERY == 0:
                _vacuum(side.setup)
            took = side.time_claim(clause, params)
            if run >= WARMUP_RUNS:
                side.latencies.append(took)


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
    """Time the claim with ``pending`` rows, alone and behind ``history`` sent rows."""
    clause = load_queries("delivery_postgresql")["claim_due"]
    params = claim_params(clause, extra)
    with _side(admin_url) as empty, _side(admin_url) as full:
        _fill(empty.setup, "pending", pending, age=1.0)
        _fill(full.setup, "sent", history, age=float(pending))
        _fill(full.setup, "pending", pending, age=1.0)
        _time_alternately([empty, full], clause, params, runs)
        _vacuum(full.setup)
        explain = _explain(full.timed, clause, params)
    return ClaimCost(pending, history, empty.latencies, full.latencies, explain)
