"""Wake on commit: LISTEN for the outbox's NOTIFY and start a tick at once.

Migration 0005 makes every INSERT into the outbox send ``NOTIFY outbox_due``
when its transaction commits. One dedicated autocommit psycopg connection per
mailer process listens; a notification asks the scheduler for a tick now. The
poll interval stays as the fallback, and SQLite (no NOTIFY) only polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from outbox_contract.database import postgres_connect_args
from outbox_contract.schema import NOTIFY_CHANNEL

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1.0  # one notifies() call; the connection's lock is held meanwhile
PROBE_EVERY = 10.0  # seconds without a notification before a SELECT 1 probe
RECONNECT_FIRST = 0.5  # seconds before the first reconnect attempt
RECONNECT_LONGEST = 30.0  # seconds, the cap on the doubling reconnect delay
APPLICATION_NAME = "outbox-listener"  # shows in pg_stat_activity


def libpq_conninfo(url: URL) -> str:
    """Return ``url`` (a SQLAlchemy URL) as a libpq connection string."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class DueListener(threading.Thread):
    """Calls ``wake`` when rows are inserted, and after every (re)connect."""

    def __init__(self, url: URL, wake: Callable[[], None]) -> None:
        super().__init__(name="outbox-listener", daemon=True)
        self.conninfo = libpq_conninfo(url)
        self.connect_args = {
            "application_name": APPLICATION_NAME,
            **postgres_connect_args(url),
        }
        self.wake = wake
        self._stop_event = threading.Event()
        self.connected = threading.Event()  # set while LISTEN is in effect

    def stop(self) -> None:
        """Ask the thread to finish; it notices within WAIT_SECONDS."""
        self._stop_event.set()

    def run(self) -> None:
        """Listen until stopped, reconnecting with a doubling delay after errors."""
        delay = RECONNECT_FIRST
        while not self._stop_event.is_set():
            try:
                self._listen()
                delay = RECONNECT_FIRST
            except psycopg.Error as err:
                self.connected.clear()
                logger.warning(
                    "outbox listener lost its connection (%s); reconnecting in %.1fs",
                    str(err).strip().splitlines()[0] if str(err).strip() else err,
                    delay,
                    extra={"action": "listen_lost"},
                )
                self._stop_event.wait(delay)
                delay = min(2 * delay, RECONNECT_LONGEST)

    def _listen(self) -> None:
        """Connect, LISTEN, tick once, then wake on every notification."""
        with psycopg.connect(
            self.conninfo, autocommit=True, **self.connect_args
        ) as connection:
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.connected.set()
            logger.info("listening for new outbox rows", extra={"action": "listen"})
            # Notifications sent while we were away are gone: look now.
            self.wake()
            quiet = 0.0
            while not self._stop_event.is_set():
                woke = False
                for _notify in connection.notifies(timeout=WAIT_SECONDS):
                    woke = True
                    break  # one wake covers everything committed so far
                if woke:
                    self.wake()
                    quiet = 0.0
                    continue
                quiet += WAIT_SECONDS
                if quiet >= PROBE_EVERY:
                    # A connection that died without a FIN (or a killed backend
                    # whose notice we missed) shows up here, not in notifies().
                    connection.execute("SELECT 1")
                    quiet = 0.0
        self.connected.clear()
