"""The pause in claiming after an SMTP connection failed: one per mailer process."""

from __future__ import annotations

import logging
import threading
import time

from mailer_service import metrics

logger = logging.getLogger(__name__)

MAX_SMTP_PAUSE = 60.0  # seconds, the longest pause in claiming after SMTP failed


class SmtpPause:
    """Leave an unreachable SMTP server alone for a while, doubling each time.

    Without it every poll would claim a batch, charge one row an attempt for the
    dead connection and release the rest: a storm of writes and connects. The
    pause is shared by all of a process's connections, so when the server dies
    under all of them at once, it doubles once, not once per connection.
    """

    def __init__(self, first: float, longest: float = MAX_SMTP_PAUSE) -> None:
        self.first = first  # seconds; the poll interval
        self.longest = longest
        self.length = 0.0  # seconds of the current pause; 0 while SMTP works
        self.until = 0.0  # monotonic time before which nothing is claimed
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Tell whether claims are paused right now."""
        return time.monotonic() < self.until

    def connection_failed(self, mailer_id: str) -> None:
        """Start (or lengthen) the pause; a failure during a pause changes nothing."""
        with self._lock:
            if self.active:
                return
            self.length = min(max(self.first, 2 * self.length), self.longest)
            self.until = time.monotonic() + self.length
        metrics.SMTP_PAUSES.inc()
        logger.warning(
            "SMTP connection failed; no claims for %.1fs",
            self.length,
            extra={"action": "smtp_pause", "mailer_id": mailer_id},
        )

    def connection_worked(self) -> None:
        """Forget earlier failures: the next one pauses for the first length again."""
        with self._lock:
            self.length = 0.0
