"""Wake on commit: LISTEN for the outbox's NOTIFY and start a tick at once.

An INSERT into the outbox sends ``NOTIFY outbox_due`` when its transaction
commits, but only while some mailer waits in ``outbox_waiters``: a notifying
commit holds a cluster-wide lock until its WAL flush, which would serialize
busy producers. So when a tick finds nothing to send, the mailer calls
:meth:`DueListener.idle`; the listener puts its backend's pid in
``outbox_waiters``, looks once more after REGISTER_SETTLE (a producer that
inserted just before could not see it), and takes the row out again as soon
as it is woken. One dedicated autocommit psycopg connection per mailer
process does all of this. The poll interval stays as the fallback, and
SQLite (no NOTIFY) only polls.
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

# One notifies() call (the connection's lock is held meanwhile). Short, because
# the loop also registers an idle mailer: a row committed before that goes
# unnotified, so registering late would make it wait.
WAIT_SECONDS = 0.02
PROBE_EVERY = 10.0  # seconds without a notification before a SELECT 1 probe
RECONNECT_FIRST = 0.5  # seconds before the first reconnect attempt
RECONNECT_LONGEST = 30.0  # seconds, the cap on the doubling reconnect delay
APPLICATION_NAME = "outbox-listener"  # shows in pg_stat_activity
# Seconds after registering before looking once more: a signup's INSERT and
# its COMMIT are milliseconds apart.
REGISTER_SETTLE = 0.02

REGISTER = (
    "INSERT INTO outbox_waiters (pid, worker) VALUES (pg_backend_pid(), %s)"
    " ON CONFLICT (pid) DO UPDATE SET since = now(), worker = EXCLUDED.worker"
)
UNREGISTER = "DELETE FROM outbox_waiters WHERE pid = pg_backend_pid()"
# Rows of listeners whose session is gone (a killed mailer): they would only
# cost producers a NOTIFY each, but nobody would ever take them out.
FORGET_THE_DEAD = (
    "DELETE FROM outbox_waiters AS w"
    " WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.pid = w.pid)"
)


def libpq_conninfo(url: URL) -> str:
    """Return ``url`` (a SQLAlchemy URL) as a libpq connection string."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class DueListener(threading.Thread):
    """Calls ``wake`` when rows are inserted, and after every (re)connect."""

    def __init__(
        self, url: URL, wake: Callable[[], None], mailer_id: str = "mailer"
    ) -> None:
        super().__init__(name="outbox-listener", daemon=True)
        self.mailer_id = mailer_id
        self.conninfo = libpq_conninfo(url)
        self.connect_args = {
            "application_name": APPLICATION_NAME,
            **postgres_connect_args(url),
        }
        self.wake = wake
        self._stop_event = threading.Event()
        self._idle = threading.Event()  # the mailer found nothing to send
        self.connected = threading.Event()  # set while LISTEN is in effect
        self.waiting = threading.Event()  # set while our row is in outbox_waiters

    def idle(self) -> None:
        """Say the mailer has nothing to send: ask to be notified of new rows."""
        self._idle.set()

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
            # A new session: a row we had belonged to the old one, now gone.
            self.waiting.clear()
            connection.execute(FORGET_THE_DEAD)
            self.connected.set()
            logger.info("listening for new outbox rows", extra={"action": "listen"})
            # Notifications sent while we were away are gone: look now.
            self.wake()
            quiet = 0.0
            while not self._stop_event.is_set():
                if self._idle.is_set() and not self.waiting.is_set():
                    self._register(connection)
                woke = False
                for _notify in connection.notifies(timeout=WAIT_SECONDS):
                    woke = True
                    break  # one wake covers everything committed so far
                if woke:
                    self._unregister(connection)
                    self.wake()
                    quiet = 0.0
                    continue
                quiet += WAIT_SECONDS
                if quiet >= PROBE_EVERY:
                    # A connection that died without a FIN (or a killed backend
                    # whose notice we missed) shows up here, not in notifies().
                    connection.execute(FORGET_THE_DEAD)
                    quiet = 0.0
            self._unregister(connection)
        self.connected.clear()
        self.waiting.clear()

    def _register(self, connection: psycopg.Connection) -> None:
        """Wait in outbox_waiters, then look once more for rows it came too late for."""
        connection.execute(REGISTER, (self.mailer_id,))
        self.waiting.set()
        if not self._stop_event.wait(REGISTER_SETTLE):
            self.wake()

    def _unregister(self, connection: psycopg.Connection) -> None:
        """Leave outbox_waiters: the mailer is busy, so producers need not notify."""
        self._idle.clear()
        if self.waiting.is_set():
            connection.execute(UNREGISTER)
            self.waiting.clear()
