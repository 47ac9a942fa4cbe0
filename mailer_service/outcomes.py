"""What an attempt means for its row: the policy's decision, then the report.

The completer (:mod:`mailer_service.completer`) writes outcomes in batches;
this module says what each one writes, and after the write updates the
suppression list, the metrics and the one log line per message outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mailer_service import metrics, suppression
from mailer_service.policy import RetryPolicy, enhanced_code
from mailer_service.smtp import Attempt
from mailer_service.store import ClaimedRow, Completion, OutboxStore
from outbox_contract.logs import redact_addresses

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finished:
    """One attempt the SMTP server has answered, waiting for the completer."""

    row: ClaimedRow
    attempt: Attempt
    took: float  # seconds the attempt took


class Outcomes:
    """Turns an attempt into the row's new state, and reports each write."""

    def __init__(self, policy: RetryPolicy, suppress_hard_bounces: bool = True) -> None:
        self.policy = policy
        self.suppress_hard_bounces = suppress_hard_bounces  # MAILER_SUPPRESS_...

    def completion(self, done: Finished) -> Completion:
        """Apply the retry policy to one attempt: what the completer writes."""
        failure = done.attempt.failure
        details = {
            "took": done.took,
            "code": failure.code if failure else 250,
            "enhanced": enhanced_code(failure.error) if failure else None,
            "refused": suppression.refused_and_suppressed(done.attempt) or None,
        }
        if done.attempt.all_suppressed:
            details["code"] = None  # nothing went to SMTP
            error = "every recipient is suppressed"
            return Completion(done.row.id, "suppressed", error, **details)
        decision = self.policy.decide(failure, done.row.attempts + 1)
        return Completion(
            done.row.id, decision.result, decision.error, decision.retry_in, **details
        )

    def written(
        self,
        store: OutboxStore,
        done: Finished,
        completion: Completion,
        owned: bool,
        mailer_id: str,
    ) -> None:
        """Update the suppression list, count and log one outcome just written."""
        row, outcome, took = done.row, done.attempt, done.took
        failure = outcome.failure
        if owned:
            self._update_suppressions(store, row, outcome)
        result = completion.result if owned else f"{completion.result}-unrecorded"
        code = completion.code
        metrics.attempt_recorded(row, completion.result, code, took, owned)
        fields: dict[str, object] = {
            "action": "deliver",
            "outbox_id": row.id,
            "attempt": row.attempts + 1,
            "result": result,
            "code": code,
            "latency_ms": round(took * 1000),
            "mailer_id": mailer_id,
        }
        if completion.refused and failure is None:
            fields["refused"] = len(completion.refused)  # how many, never who
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
                "outbox_id=%d was taken by another mailer; outcome not recorded",
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
