"""Commit to SMTP 250, for an idle mailer: how long one new email waits.

One mailer runs with its default settings (no MAILER_POLL_INTERVAL override:
its idle behaviour is what is measured) against smtp-sink. Rows are inserted
one at a time, each in its own committed transaction, and each is waited for
until ``sent`` before the next, after a small random gap. The latency is
``sent_at - created_at``: both from the database clock, ``created_at`` at the
insert's transaction (its commit follows at once) and ``sent_at`` at the
mailer's first write after the server's 250.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field

import psycopg

from bench import database, pg
from bench.context import Bench
from bench.load import percentile
from bench.messages import welcome
from bench.procs import start_mailer

GAP_SECONDS = (0.0, 0.05)  # random pause between a row's 250 and the next insert
WAIT_TIMEOUT = 60.0  # seconds one row may take; a stuck mailer fails the phase
POLL_SECONDS = 0.002  # how often a row's status is read; adds nothing measured
SEED = 20  # the gaps are random, but the same in every run

INSERT = """
INSERT INTO outbox (recipient, subject, body_text, body_html, message_id)
VALUES (%s, %s, %s, %s, %s)
RETURNING id
"""
SENT = """
SELECT status, EXTRACT(EPOCH FROM sent_at - created_at)
FROM outbox WHERE id = %s
"""


@dataclass(frozen=True)
class CommitLatency:
    """Per-row commit-to-250 latencies, in milliseconds, in insertion order."""

    samples_ms: list[float] = field(default_factory=list)
    planned: int = 0  # rows the phase meant to insert
    budget: float = 0.0  # seconds the phase was allowed

    def quantile_ms(self, q: float) -> float:
        """Return the ``q``-th percentile in milliseconds."""
        return percentile(self.samples_ms, q)

    @property
    def cut_short(self) -> bool:
        """Tell whether the time budget ended the phase before every row."""
        return len(self.samples_ms) < self.planned


def _insert_one(connection: psycopg.Connection, prefix: str, index: int) -> int:
    """Insert one outbox row in its own transaction; return its id."""
    fields = welcome(prefix, index)
    row = connection.execute(
        INSERT,
        (
            fields.recipient,
            fields.subject,
            fields.body_text,
            fields.body_html,
            fields.message_id,
        ),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING returns the row
    return int(row[0])


def _wait_sent(connection: psycopg.Connection, row_id: int) -> float:
    """Wait until row ``row_id`` is sent; return sent_at - created_at in ms."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while time.monotonic() < deadline:
        status, seconds = connection.execute(SENT, (row_id,)).fetchone() or (None, 0)
        if status == "sent":
            return float(seconds) * 1000
        if status == "failed":
            raise RuntimeError(f"outbox row {row_id} failed instead of being sent")
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"outbox row {row_id} was not sent in {WAIT_TIMEOUT:g} s")


def measure_commit_latency(bench: Bench, rows: int, budget: float) -> CommitLatency:
    """Insert up to ``rows`` rows one by one, within ``budget`` seconds."""
    if "MAILER_POLL_INTERVAL" in os.environ:
        print(
            "note: MAILER_POLL_INTERVAL is set in the environment; the idle"
            " mailer inherits it, so commit-to-250 is not at default settings",
            file=sys.stderr,
        )
    result = CommitLatency(planned=rows, budget=budget)
    rng = random.Random(SEED)
    prefix = f"latency-{uuid.uuid4().hex[:8]}"
    database.truncate(bench.db_url)  # the claim sees only this phase's rows
    mailer = start_mailer(bench.idle_mailer_env(bench.sink), bench.log("latency"))
    try:
        with pg.connect(bench.db_url) as connection:
            # Unmeasured: proves the mailer is up and past its first claim.
            _wait_sent(connection, _insert_one(connection, f"{prefix}-warm", 0))
            deadline = time.monotonic() + budget
            for index in range(rows):
                if time.monotonic() > deadline:
                    break
                time.sleep(rng.uniform(*GAP_SECONDS))
                row_id = _insert_one(connection, prefix, index)
                result.samples_ms.append(_wait_sent(connection, row_id))
    finally:
        mailer.stop()
    return result
