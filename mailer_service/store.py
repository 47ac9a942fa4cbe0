"""The mailer's only access to the outbox table: named SQL, one commit per call.

The statements live in ``queries/delivery_<dialect>.sql`` as named blocks
(``-- name: claim_due --``). Every method here is one short transaction, so no
transaction or row lock is ever held while the mailer talks to SMTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, CursorResult, Row

from mailer_service.sql import load_queries

# What a server said of each recipient it refused: address -> (code, reply).
Refused = dict[str, tuple[int, str]]


@dataclass(frozen=True)
class ClaimedRow:
    """An outbox row leased to this mailer, with what it takes to send it."""

    id: int
    recipient: str
    subject: str
    body_text: str
    body_html: str | None
    message_id: str
    attempts: int  # attempts made before this one
    send_started_at: object | None = None  # a send began under a lease now expired
    age_seconds: float = 0.0  # since the row's insert, by the database's clock
    message: object | None = None  # outbox.message: the whole message, or None
    created_epoch: float = 0.0  # the insert time, the Date of a plain row
    bypass_suppression: bool = False  # send even to suppressed addresses
    priority: int = 0
    due_epoch: float = 0.0  # available_at: with priority and id, the claim's order
    claimed_at: float = field(default_factory=time.monotonic, compare=False)


@dataclass(frozen=True)
class Completion:
    """One attempt's outcome as written: the row's new state and its history line."""

    id: int
    result: str  # sent, retry, failed or suppressed
    error: str | None = None
    delay_seconds: float = 0.0  # until the next attempt, for a retry
    took: float = 0.0  # seconds the attempt took
    code: int | None = None  # the SMTP reply code
    enhanced: str | None = None  # the enhanced status code, e.g. 5.1.1
    refused: Refused | None = None

    def params(self) -> dict[str, object]:
        """Return the values by name, in the order of ``complete``'s arrays."""
        return {
            "id": self.id,
            "result": self.result,
            "error": self.error,
            "delay_seconds": self.delay_seconds,
            "took": self.took,
            "code": self.code,
            "enhanced": self.enhanced,
            "refused": _json(self.refused),
        }


class OutboxStore:
    """Claims, leases and finishes outbox rows on behalf of one mailer."""

    def __init__(
        self, connection: Connection, mailer_id: str, lease_seconds: float
    ) -> None:
        # One connection for the store's life: checking one out of the pool (and
        # pinging it) for every outcome would double the round trips per message.
        # Every statement here is a transaction of its own, so autocommit: one
        # round trip each, instead of BEGIN, the statement and COMMIT.
        self.connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        self.mailer_id = mailer_id
        self.lease_seconds = lease_seconds
        dialect = connection.dialect.name
        # The suppression check is the status page's too: one statement, kept
        # with the other reads in inspect_<dialect>.sql.
        shared = load_queries(f"inspect_{dialect}")["suppressed_among"]
        self.queries = {
            **load_queries(f"delivery_{dialect}"),
            "suppressed_among": shared,
        }

    def claim_due_rows(self, batch_size: int) -> list[ClaimedRow]:
        """Lease up to ``batch_size`` due rows to this mailer and commit."""
        result = self._run(
            "claim_due", batch_size=batch_size, lease_seconds=self.lease_seconds
        )
        # RETURNING comes in no particular order: put the batch back in the
        # claim's own (priority, due time, id), so urgent rows go first.
        rows = (ClaimedRow(*row) for row in result)
        return sorted(rows, key=lambda r: (r.priority, r.due_epoch, r.id))

    def extend_leases(self, ids: list[int]) -> set[int]:
        """Renew the lease on ``ids``; return those this mailer still holds."""
        if not ids:
            return set()
        result = self._run("extend_leases", ids=ids, lease_seconds=self.lease_seconds)
        return {row[0] for row in result}

    def load_attachments(self, row_id: int) -> list[Row]:
        """Return the attachments of ``row_id`` in order (only rows that have any)."""
        return list(self._run("load_attachments", id=row_id))

    def complete(self, outcomes: list[Completion]) -> set[int]:
        """Write outcomes with their attempt rows; return the ids still ours.

        PostgreSQL writes the whole list in one statement (``complete``: an
        UPDATE over unnest() inside WITH, with the attempts' INSERT). SQLite
        cannot, so there each outcome is two statements, all in one transaction.
        """
        if not outcomes:
            return set()
        if self.connection.dialect.name == "postgresql":
            columns = list(zip(*(o.params().values() for o in outcomes), strict=True))
            names = ("row_ids", "results", "errors", "delays", "tooks", "codes")
            names += ("enhanced", "refused")
            params = dict(zip(names, (list(c) for c in columns), strict=True))
            return {row[0] for row in self._run("complete", **params)}
        owned: set[int] = set()
        self.connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            for done in outcomes:
                params = done.params()
                rows = list(self._run(f"mark_{done.result}", **params))
                if rows:
                    self._run("record_attempt", attempt=rows[0][1], **params)
                    owned.add(done.id)
        except BaseException:
            self.connection.exec_driver_sql("ROLLBACK")
            raise
        self.connection.exec_driver_sql("COMMIT")
        return owned

    def suppressed_among(self, addresses: set[str]) -> set[str]:
        """Return which of ``addresses`` (lower-case) are on the suppression list."""
        if not addresses:
            return set()
        return {
            r[0] for r in self._run("suppressed_among", addresses=sorted(addresses))
        }

    def suppress_bounced(
        self, address: str, code: int | None, enhanced: str | None, detail: str
    ) -> None:
        """Put a hard-bounced address on the suppression list (if not there yet)."""
        self._run(
            "suppress_bounced",
            address=address.lower(),
            code=code,
            enhanced=enhanced,
            detail=detail,
        )

    def lift_suppression(self, addresses: set[str]) -> None:
        """Take addresses that were just delivered to off the suppression list."""
        if addresses:
            self._run("lift_suppression", addresses=sorted(addresses))

    def mark_started(self, row_id: int) -> bool:
        """Record, durably, that this row's send begins now; False if not ours."""
        # The statement itself makes its commit synchronous (see the SQL).
        return self._run("mark_started", id=row_id).rowcount == 1

    def take_send_turn(self, interval: float) -> float:
        """Take a turn of the fleet-wide rate; return 0, or the seconds to wait."""
        result = self._run("take_send_turn", interval=interval)
        return float(next(iter(result))[0])

    def take_connection_slot(self, lock_class: int, slot: int) -> bool:
        """Hold connection slot ``slot`` for this session, if it is free."""
        result = self._run("take_connection_slot", lock_class=lock_class, slot=slot)
        return bool(next(iter(result))[0])

    def give_connection_slot(self, lock_class: int, slot: int) -> None:
        """Hand connection slot ``slot`` back."""
        self._run("give_connection_slot", lock_class=lock_class, slot=slot)

    def release(self, ids: list[int]) -> int:
        """Hand unsent rows back to ``pending`` without charging an attempt."""
        if not ids:
            return 0
        return self._run("release", ids=ids).rowcount

    def _run(self, name: str, **params: object) -> _Result:
        """Execute one named statement as its own (autocommitted) transaction."""
        # A DML statement always yields a CursorResult, with rowcount.
        result: CursorResult = self.connection.execute(
            self.queries[name], {"mailer_id": self.mailer_id, **params}
        )
        rows = list(result.all()) if result.returns_rows else None
        return _Result(rows, result.rowcount)


def _json(refused: Refused | None) -> str | None:
    """Render refused recipients for ``outbox.refused``: {address: [code, reply]}."""
    if not refused:
        return None
    return json.dumps({a: [code, reply] for a, (code, reply) in refused.items()})


@dataclass(frozen=True)
class _Result:
    """What a statement returned, read before the next statement runs."""

    rows: list[Row] | None
    rowcount: int

    def __iter__(self) -> Iterator[Row]:
        """Iterate over the returned rows."""
        return iter(self.rows or [])
