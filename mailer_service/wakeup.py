"""The one thing that wakes the mailer: a debounced signal, and the loop it drives.

APScheduler rings it every ``MAILER_POLL_INTERVAL``; the listener rings it on
NOTIFY. Rings fold: any number of them while a tick runs make exactly one
more tick, right after it (River's debounced channel does the same). The
delivery loop takes the ring before each tick, so a row committed during a
tick always rings for the next one and never waits for the poll.
"""

from __future__ import annotations

import logging
import threading

from mailer_service import metrics
from mailer_service.mailer import Mailer

logger = logging.getLogger(__name__)


class Wakeup:
    """Rings fold into one until taken; taking waits for the next ring."""

    def __init__(self) -> None:
        self._rung = threading.Event()

    def ring(self) -> None:
        """Ask for a tick; a tick already asked for absorbs this one."""
        self._rung.set()

    def take(self, timeout: float | None = None) -> bool:
        """Wait for a ring (up to ``timeout`` seconds) and take it; False if none."""
        rung = self._rung.wait(timeout)
        self._rung.clear()
        return rung


def deliver_when_woken(mailer: Mailer, wakeup: Wakeup) -> None:
    """Run a tick per ring until the mailer stops: the delivery thread's loop."""
    while not mailer.stopping:
        wakeup.take()
        if mailer.stopping:
            break
        metrics.TICKS.inc()
        try:
            mailer.run_tick()
        except Exception:  # a bug: log it, and let the next ring try again
            logger.exception("tick failed", extra={"action": "tick_crashed"})
        # A finished tick is progress, even an idle one; a wedged one never ends.
        metrics.PROGRESS.note()
