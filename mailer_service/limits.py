"""Fleet-wide delivery limits, held in PostgreSQL so they bind every replica.

- :class:`SendRate` keeps all mailers together under ``MAILER_RATE_LIMIT``
  messages per second, turns spaced evenly (GCRA on one row, no burst).
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
from typing import Protocol

logger = logging.getLogger(__name__)

SLOT_LOCK_CLASS = 0x6F7574  # advisory-lock namespace of the connection slots
THROTTLE_RECOVERY = 60.0  # seconds without "too many" before a sender comes back


class LimitStore(Protocol):
    """The connection the limits are kept on: the claimer's, or a store."""

    def take_send_turn(self, interval: float) -> float:
        """Take a turn of the fleet-wide rate; return 0, or the seconds to wait."""
        ...

    def take_connection_slot(self, lock_class: int, slot: int) -> bool:
        """Hold connection slot ``slot`` for this session, if it is free."""
        ...

    def give_connection_slot(self, lock_class: int, slot: int) -> None:
        """Hand connection slot ``slot`` back."""
        ...


class SendRate:
    """Wait for this mailer's turn under the fleet-wide rate, without spinning."""

    def __init__(self, per_second: float, stopping: threading.Event) -> None:
        # Turns are spaced exactly this far apart, with no burst tolerance:
        # SMTP latency varies from message to message (a turn taken earlier may
        # be delivered later), so the server may still see small bunches.
        self.interval = 1 / per_second  # seconds between sends, fleet-wide
        self.stopping = stopping

    def wait_for_turn(self, store: LimitStore) -> bool:
        """Return once this process may send one message; False if stopping."""
        while not self.stopping.is_set():
            wait = store.take_send_turn(self.interval)
            if wait <= 0:
                return True
            self.stopping.wait(wait)  # sleeps until the turn, or until SIGTERM
        return False


class ConnectionSlots:
    """At most ``limit`` SMTP connections across the fleet, one slot each.

    The slots are session advisory locks, all on the claimer's one session;
    such a lock is re-entrant within its session, so which slots this process
    holds is also kept here.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._mine: set[int] = set()  # slots this process holds
        self._lock = threading.Lock()

    def take(self, store: LimitStore) -> int | None:
        """Hold a free slot on the store's session and return it, or None."""
        with self._lock:
            for slot in range(self.limit):
                if slot not in self._mine and store.take_connection_slot(
                    SLOT_LOCK_CLASS, slot
                ):
                    self._mine.add(slot)
                    return slot
        return None

    def give(self, store: LimitStore, slot: int) -> None:
        """Hand ``slot`` back."""
        with self._lock:
            store.give_connection_slot(SLOT_LOCK_CLASS, slot)
            self._mine.discard(slot)


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

    def slow_down(self, mailer_id: str) -> None:
        """Halve the senders (at least one) after the server said "too many"."""
        with self._lock:
            self.senders = max(1, self.senders // 2)
            self.recover_at = time.monotonic() + THROTTLE_RECOVERY
        logger.warning(
            "SMTP server asked to slow down; %d SMTP connection(s) for now",
            self.senders,
            extra={"action": "throttle", "mailer_id": mailer_id},
        )
