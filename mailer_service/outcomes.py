"""Recording what happened to each attempt: the fenced write and its log line.

When the database refuses an outcome after the SMTP server has already
answered, the outcome (and the rows still held) is kept in memory and written
first thing at the next tick, still fenced, so a database blip resends nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from sqlalchemy.exc import SQLAlchemyError

from mailer_service import metrics, suppression
from mailer_service.policy import Decision, RetryPolicy, enhanced_code
from mailer_service.smtp import Attempt
from mailer_service.store import ClaimedRow, OutboxStore
from outbox_contract.logs import redact_addresses

logger = logging.getLogger(__name__)


class Outcomes:
    """Writes each attempt's outcome, and keeps those the database refused."""

    def __init__(self, policy: RetryPolicy, suppress_hard_bounces: bool = True) -> None:
        self.policy = policy
        self.suppress_hard_bounces = suppress_hard_bounces  # MAILER_SUPPRESS_...
        self._lock = threading.Lock()  # senders record from several threads
        self._unrecorded: list[tuple[ClaimedRow, Attempt, float, str]] = []
        self._unreleased: set[int] = set()

    @property
    def carried(self) -> bool:
        """Tell whether anything waits to be written."""
        return bool(self._unrecorded or self._unreleased)

    def record(
        self,
        store: OutboxStore,
        row: ClaimedRow,
        attempt: Attempt,
        took: float,
        worker_id: str,
    ) -> None:
        """Commit the outcome of one attempt, fenced by this worker's id."""
        try:
            self._write(store, row, attempt, took, worker_id)
        except SQLAlchemyError:
            with self._lock:
                self._unrecorded.append((row, attempt, took, worker_id))
            raise

    def carry_release(self, ids: Iterable[int]) -> None:
        """Remember rows to hand back once the database answers again."""
        with self._lock:
            self._unreleased.update(ids)

    def write_carried(self, store: OutboxStore) -> None:
        """Write the outcomes and releases that a database error held back."""
        with self._lock:
            while self._unrecorded:
                self._write(store, *self._unrecorded[0])
                self._unrecorded.pop(0)
            if self._unreleased:
                store.release(sorted(self._unreleased))
                self._unreleased.clear()

    def _write(
        self,
        store: OutboxStore,
        row: ClaimedRow,
        outcome: Attempt,
        took: float,
        worker_id: str,
    ) -> None:
        """Apply the policy's decision to the row and log one line for it.

        The outcome and its attempt row are one write; the suppression list
        changes after it, only on a hard bounce or a delivery past the list.
        """
        failure = outcome.failure
        attempt = row.attempts + 1
        refused = suppression.refused_and_suppressed(outcome)
        details = {
            "took": took,
            "code": failure.code if failure else 250,
            "enhanced": enhanced_code(failure.error) if failure else None,
            "refused": refused,
        }
        decision = self.policy.decide(failure, attempt)
        if outcome.all_suppressed:
            decision = Decision("suppressed", "every recipient is suppressed")
            details["code"] = None
            owned = store.mark_suppressed(row.id, decision.error, **details)
        elif decision.result == "sent":
            owned = store.mark_sent(row.id, **details)
        elif decision.result == "failed":
            owned = store.mark_failed(row.id, decision.error or "", **details)
        else:
            owned = store.mark_retry(
                row.id, decision.error or "", decision.retry_in, **details
            )
        if owned:
            self._update_suppressions(store, row, outcome)
        result = decision.result if owned else f"{decision.result}-unrecorded"
        code = details["code"]
        metrics.attempt_recorded(row, decision.result, code, took, owned)
        fields: dict[str, object] = {
            "action": "deliver",
            "outbox_id": row.id,
            "attempt": attempt,
            "result": result,
            "code": code,
            "latency_ms": round(took * 1000),
            "worker_id": worker_id,
        }
        if refused and failure is None:
            fields["refused"] = len(refused)  # how many, never who
        if outcome.all_suppressed:
            logger.info("not sent: every recipient is suppressed", extra=fields)
        elif failure is None:
            logger.info("delivered", extra=fields)
        else:
            # SMTP replies quote the recipient; the full text stays in last_error.
            logger.warning(
                "delivery failed: %s", redact_addresses(failure.error), extra=fields
            )
        if not owned:
            logger.warning(
                "outbox_id=%d was taken by another worker; outcome not recorded",
                row.id,
                extra={"action": "fenced_out", "outbox_id": row.id},
            )

    def _update_suppressions(
        self, store: OutboxStore, row: ClaimedRow, outcome: Attempt
    ) -> None:
        """Add hard bounces to the list; lift addresses delivered past it."""
        if self.suppress_hard_bounces:
            for address, code, enhanced, reply in suppression.hard_bounces(outcome):
                store.suppress_bounced(address, code, enhanced, reply)
                metrics.SUPPRESSIONS_ADDED.inc()
                logger.info(
                    "outbox_id=%d: a recipient bounced hard (%s); suppressed",
                    row.id,
                    enhanced,
                    extra={"action": "suppress", "outbox_id": row.id},
                )
        if row.bypass_suppression and outcome.accepted:
            store.lift_suppression(outcome.accepted)
