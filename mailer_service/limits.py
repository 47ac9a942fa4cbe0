"""Fleet-wide delivery limits, held in PostgreSQL so they bind every replica.

- :class:`SendRate` keeps all mailers together under ``MAILER_RATE_LIMIT``
  messages per second, with a small burst allowance (GCRA on one row).
- :class:`ConnectionSlots` keeps them under ``MAILER_MAX_CONNECTIONS`` SMTP
  connections at once (session advisory locks, freed by the server when a
  mailer dies).
- :class:`Throttle` makes one mailer use fewer connections for a while after
  its SMTP server said "421" or "too many".
"""

from __future__ import annotations

import logging
import threading
import time

from mailer_service.store import OutboxStore

logger = logging.getLogger(__name__)

BURST_SHARE = 0.2  # the most of one second's worth that may come in a burst
SLOT_LOCK_CLASS = 0x6F7574  # advisory-lock namespace of the connection slots
THROTTLE_RECOVERY = 60.0  # seconds without "too many" before a sender comes back


class SendRate:
    """Wait for this mailer's turn under the fleet-wide rate, without spinning."""

    def __init__(self, per_second: float, stopping: threading.Event) -> None:
        # Turns are spaced exactly this far apart, with no burst tolerance: the
        # 20 % the limit allows is left to SMTP latency that varies from message
        # to message (a turn taken earlier may be delivered later). Up to
        # BURST_SHARE - 1/rate seconds of it keep every 1-second window at the
        # server within floor(1.2 x rate) deliveries.
        self.interval = 1 / per_second  # seconds between sends, fleet-wide
        self.stopping = stopping

    def wait_for_turn(self, store: OutboxStore) -> bool:
        """Return once this process may send one message; False if stopping."""
        while not self.stopping.is_set():
            wait = store.take_send_turn(self.interval)
            if wait <= 0:
                return True
            self.stopping.wait(wait)  # sleeps until the turn, or until SIGTERM
        return False


class ConnectionSlots:
    """At most ``limit`` SMTP connections across the fleet, one slot each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def take(self, store: OutboxStore) -> int | None:
        """Hold a free slot on the store's session and return it, or None."""
        for slot in range(self.limit):
            if store.take_connection_slot(SLOT_LOCK_CLASS, slot):
                return slot
        return None

    def give(self, store: OutboxStore, slot: int) -> None:
        """Hand ``slot`` back."""
        store.give_connection_slot(SLOT_LOCK_CLASS, slot)


class Throttle:
    """How many senders this mailer runs: halved on "too many", then regained."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.senders = concurrency
        self.recover_at = 0.0  # monotonic time the next sender comes back
        self._lock = threading.Lock()

    def current(self) -> int:
        """Return the number of senders to run now, regaining one per quiet minute."""
        with self._lock:
            now = time.monotonic()
            if self.senders < self.concurrency and now >= self.recover_at:
                self.senders += 1
                self.recover_at = now + THROTTLE_RECOVERY
            return self.senders

    def slow_down(self, worker_id: str) -> None:
        """Halve the senders (at least one) after the server said "too many"."""
        with self._lock:
            self.senders = max(1, self.senders // 2)
            self.recover_at = time.monotonic() + THROTTLE_RECOVERY
        logger.warning(
            "SMTP server asked to slow down; %d SMTP connection(s) for now",
            self.senders,
            extra={"action": "throttle", "worker_id": worker_id},
        )
