"""One sender: an SMTP connection's loop of claim, send and record.

A tick runs ``MAILER_CONCURRENCY`` of these side by side, each on its own SMTP
connection and its own database connection. Every outcome is committed as
soon as the server has answered, so a crash repeats at most the message each
sender had in flight. No transaction is open while SMTP is talked to.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from mailer_service import metrics, suppression
from mailer_service.config import RelaySettings
from mailer_service.lease import Lease
from mailer_service.limits import ConnectionSlots, SendRate, Throttle
from mailer_service.outcomes import Outcomes
from mailer_service.pause import SmtpPause
from mailer_service.policy import Failure
from mailer_service.smtp import Attempt, TimeoutConnection, send_row
from mailer_service.store import ClaimedRow, OutboxStore
from outbox_contract.message import attachment_count

logger = logging.getLogger(__name__)

BATCH_SECONDS = 0.25  # seconds of sending one claim should hold, at most
FIRST_BATCH_SHARE = 4  # before any send is timed, claim a quarter of a batch

AMBIGUOUS = (
    "ambiguous: a mailer stopped after starting this send, so it may have been"
    " delivered (MAILER_ON_AMBIGUOUS=hold); check, then `outbox retry` it"
)


class BatchSizer:
    """Claim about BATCH_SECONDS of sending at a time, up to MAILER_BATCH_SIZE rows.

    Against a slow relay (50 ms a message) a full batch would leave a few
    connections sending the last rows while the others sit idle; against a
    fast server a full batch saves claims. The senders of a process share one
    estimate of the time a message takes.
    """

    def __init__(self, most: int) -> None:
        self.most = most
        self.per_message = 0.0  # seconds, a moving average; 0 until measured
        self._lock = threading.Lock()

    def next_size(self) -> int:
        """Return how many rows the next claim should take."""
        if self.per_message <= 0:
            return max(1, self.most // FIRST_BATCH_SHARE)
        return max(1, min(self.most, int(BATCH_SECONDS / self.per_message)))

    def observe(self, messages: int, seconds: float) -> None:
        """Fold a batch's sending time into the estimate."""
        if messages <= 0:
            return
        with self._lock:
            sample = seconds / messages
            self.per_message = (
                sample
                if self.per_message <= 0
                else 0.7 * self.per_message + 0.3 * sample
            )


@dataclass
class Sender:
    """What every sender of one mailer process shares; ``drain`` is one sender."""

    settings: RelaySettings
    worker_id: str
    stopping: threading.Event
    outcomes: Outcomes
    pause: SmtpPause
    throttle: Throttle
    rate: SendRate | None = None
    slots: ConnectionSlots | None = None
    sizer: BatchSizer = field(init=False)

    def __post_init__(self) -> None:
        self.sizer = BatchSizer(self.settings.batch_size)

    @property
    def hold(self) -> bool:
        """Tell whether an interrupted send must be held for a person to check."""
        return self.settings.on_ambiguous == "hold"

    def drain(self, store: OutboxStore) -> int:
        """Claim and deliver batches over one connection until none are due."""
        slot = self.slots.take(store) if self.slots else None
        if self.slots and slot is None:
            return 0  # every fleet-wide SMTP connection is in use: claim nothing
        connection = TimeoutConnection(self.settings.mail_timeout)
        finished = 0
        try:
            while not self.stopping.is_set() and not self.pause.active:
                size = self.sizer.next_size()
                since = time.monotonic()
                rows = store.claim_due_rows(size)
                sending = time.monotonic()
                metrics.CLAIM_SECONDS.observe(sending - since)
                if not rows:
                    break
                count, failure = self.deliver_batch(store, connection, rows, since)
                self.sizer.observe(count, time.monotonic() - sending)
                finished += count
                if failure is not None:
                    if failure.slow_down:
                        self.throttle.slow_down(self.worker_id)
                    self.pause.connection_failed(self.worker_id)
                    break
                self.pause.connection_worked()
                if len(rows) < size:
                    break
        finally:
            connection.close()
            if self.slots and slot is not None:  # both: for the type checker
                self.slots.give(store, slot)
        return finished

    def deliver_batch(
        self,
        store: OutboxStore,
        connection: TimeoutConnection,
        rows: list[ClaimedRow],
        since: float,
    ) -> tuple[int, Failure | None]:
        """Send ``rows`` in order; return (rows finished, the failure that ended it)."""
        lease = Lease(store, rows, since)
        finished, ended_by = 0, None
        try:
            suppressed = suppression.suppressed_in_batch(store, rows)
            for row in rows:
                if self.stopping.is_set() or ended_by is not None:
                    break
                if self.hold and row.send_started_at is not None:
                    lease.finish(row.id)
                    self.outcomes.record(
                        store, row, Attempt(Failure(AMBIGUOUS, permanent=True)),
                        0.0, self.worker_id,
                    )  # fmt: skip
                    continue
                if self.rate and not self.rate.wait_for_turn(store):
                    break  # stopping while waiting for a turn
                if not self.owns(store, lease, row):
                    continue
                started = time.monotonic()
                attempt = send_row(
                    connection,
                    row,
                    self.attachments(store, row),
                    suppression.for_row(row, suppressed),
                )
                lease.finish(row.id)
                took = time.monotonic() - started
                self.outcomes.record(store, row, attempt, took, self.worker_id)
                finished += 1
                if attempt.failure is not None and attempt.failure.ends_batch:
                    ended_by = attempt.failure
            # Whatever was not attempted goes back now, not when the lease ends.
            released = lease.release_all()
            metrics.ROWS_RELEASED.inc(released)
            if released:
                logger.info(
                    "released %d unsent rows", released, extra={"action": "release"}
                )
        except SQLAlchemyError:
            self.outcomes.carry_release(lease.held)
            raise
        return finished, ended_by

    @staticmethod
    def attachments(store: OutboxStore, row: ClaimedRow) -> list:
        """Load the row's attachments, only if the stored message counts any."""
        if not attachment_count(row.message):
            return []
        return store.load_attachments(row.id)

    def owns(self, store: OutboxStore, lease: Lease, row: ClaimedRow) -> bool:
        """Make sure the row is still ours to send (and, under hold, mark it)."""
        if lease.holds(row.id) and (not self.hold or store.mark_started(row.id)):
            return True
        lease.finish(row.id)
        metrics.LEASES_LOST.inc()
        logger.warning(
            "outbox_id=%d lease lost before sending; skipped",
            row.id,
            extra={"action": "lease_lost", "outbox_id": row.id},
        )
        return False
