"""The SMTP workers: each keeps one SMTP connection busy and holds no database one.

A tick runs ``MAILER_CONCURRENCY`` of them (fewer after a "421 too many").
Each takes the next claimed row from the claimer's prefetch, sends it, and
hands the answer to the completer; the only database work on the way, the
fleet-wide limits and the hold marker, goes through the claimer's connection.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from mailer_service import metrics
from mailer_service.claimer import Claimer, Prefetch, Work
from mailer_service.completer import Completer
from mailer_service.config import MailerSettings
from mailer_service.limits import ConnectionSlots, SendRate, Throttle
from mailer_service.outcomes import Finished
from mailer_service.pause import SmtpPause
from mailer_service.policy import Failure
from mailer_service.smtp import Attempt, TimeoutConnection, send_row

logger = logging.getLogger(__name__)

AMBIGUOUS = (
    "ambiguous: a mailer stopped after starting this send, so it may have been"
    " delivered (MAILER_ON_AMBIGUOUS=hold); check, then `outbox retry` it"
)


@dataclass
class SmtpWorkers:
    """What the SMTP workers of one mailer share; :meth:`run` is one worker."""

    settings: MailerSettings
    mailer_id: str
    stopping: threading.Event
    pause: SmtpPause
    throttle: Throttle
    rate: SendRate | None = None
    slots: ConnectionSlots | None = None

    @property
    def hold(self) -> bool:
        """Tell whether an interrupted send must be held for a person to check."""
        return self.settings.on_ambiguous == "hold"

    def run(self, prefetch: Prefetch, claimer: Claimer, completer: Completer) -> int:
        """Send rows from ``prefetch`` until it closes; return how many were tried."""
        slot = self.slots.take(claimer) if self.slots else None
        if self.slots and slot is None:
            prefetch.worker_ready(joined=False)  # every fleet-wide slot is taken
            return 0
        prefetch.worker_ready(joined=True)
        try:
            return self._send_until_closed(prefetch, claimer, completer)
        finally:
            prefetch.worker_left()
            if self.slots and slot is not None:  # both: for the type checker
                self.slots.give(claimer, slot)

    def _send_until_closed(
        self, prefetch: Prefetch, claimer: Claimer, completer: Completer
    ) -> int:
        """The loop of :meth:`run`, over one SMTP connection."""
        connection = TimeoutConnection(self.settings.mail_timeout)
        tried = 0
        try:
            while (work := prefetch.take()) is not None:
                try:
                    attempt = self.attempt(work, claimer, completer, connection)
                    # Pause before the row counts as done, so the claimer
                    # never claims for a connection that just failed.
                    ends = attempt is not None and self.ends_connection(attempt)
                finally:
                    prefetch.done()
                tried += attempt is not None
                if ends:
                    break
        finally:
            connection.close()
        return tried

    def ends_connection(self, attempt: Attempt) -> bool:
        """Pause (and slow down) after a failed connection; tell if it ended."""
        failure = attempt.failure
        if failure is None or not failure.ends_batch:
            self.pause.connection_worked()
            return False
        if failure.slow_down:
            self.throttle.slow_down(self.mailer_id)
        self.pause.connection_failed(self.mailer_id)
        return True

    def attempt(
        self,
        work: Work,
        claimer: Claimer,
        completer: Completer,
        connection: TimeoutConnection,
    ) -> Attempt | None:
        """Send one row and return how it went; None if it was not tried.

        A row not tried because the mailer stops or pauses stays held, and the
        claimer hands it back; one whose lease was lost is left alone.
        """
        row = work.row
        if self.stopping.is_set() or self.pause.active:
            return None
        if self.hold and row.send_started_at is not None:
            claimer.finish(row.id)
            held = Attempt(Failure(AMBIGUOUS, permanent=True))
            completer.put(Finished(row, held, 0.0))
            return held
        if self.rate and not self.rate.wait_for_turn(claimer):
            return None  # stopping while waiting for a turn
        if not claimer.keep_lease(row.id) or (
            self.hold and not claimer.mark_started(row.id)
        ):
            claimer.finish(row.id)
            metrics.LEASES_LOST.inc()
            logger.warning(
                "outbox_id=%d lease lost before sending; skipped",
                row.id,
                extra={"action": "lease_lost", "outbox_id": row.id},
            )
            return None
        started = time.monotonic()
        attempt = send_row(connection, row, work.attachments, work.suppressed)
        claimer.finish(row.id)
        completer.put(Finished(row, attempt, time.monotonic() - started))
        return attempt
