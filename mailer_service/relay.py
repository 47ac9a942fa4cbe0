"""The delivery loop: a tick runs the senders, and ticks follow one another.

APScheduler calls :meth:`Relay.run_tick` every poll interval and whenever the
listener hears of new rows. A tick writes what a database error held back,
then runs up to ``MAILER_CONCURRENCY`` senders (:mod:`mailer_service.sender`)
side by side until the outbox is drained.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from mailer_service import db, metrics
from mailer_service.config import RelaySettings
from mailer_service.limits import ConnectionSlots, SendRate, Throttle
from mailer_service.outcomes import Outcomes
from mailer_service.pause import SmtpPause
from mailer_service.policy import RetryPolicy
from mailer_service.sender import Sender
from mailer_service.store import OutboxStore

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    """Return an id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Relay:
    """Moves due outbox rows to SMTP; ``run_tick`` is the scheduler's job."""

    def __init__(
        self,
        app: Flask,
        settings: RelaySettings,
        worker_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        # Called after each tick that drained what was due (the listener's idle()).
        self.on_idle: Callable[[], None] | None = None
        policy = RetryPolicy(
            settings.max_attempts,
            settings.backoff_seconds,
            settings.backoff_max_seconds,
            rng or random.Random(),
        )
        self.outcomes = Outcomes(policy, settings.suppress_hard_bounces)
        self.pause = SmtpPause(settings.poll_interval)
        self.throttle = Throttle(settings.concurrency)
        self._stopping = threading.Event()
        self.sender = Sender(
            settings,
            self.worker_id,
            self._stopping,
            self.outcomes,
            self.pause,
            self.throttle,
            SendRate(settings.rate_limit, self._stopping)
            if settings.rate_limit
            else None,
            ConnectionSlots(settings.max_connections)
            if settings.max_connections
            else None,
        )
        self._busy = threading.Lock()  # one tick runs at a time ...
        self._waiting = threading.Lock()  # ... and at most one more waits for it
        self._senders = ThreadPoolExecutor(
            settings.concurrency, thread_name_prefix="sender"
        )
        self._database_failing = False  # log the traceback once per outage
        self._asked = False  # a tick was asked for and has not started yet
        self._asked_lock = threading.Lock()

    def stop(self) -> None:
        """Ask the relay to stop claiming and to release what it holds."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Tell whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def ask_for_tick(self) -> bool:
        """Note that a tick is wanted now; False if one is already on its way."""
        with self._asked_lock:
            if self._asked:
                return False
            self._asked = True
            return True

    def join(self) -> None:
        """Wait until the tick in progress, if any, has finished."""
        with self._busy:
            self._senders.shutdown(wait=True)

    def run_tick(self) -> int:
        """Deliver due rows until none are left or the relay stops; return the count.

        A tick asked for while one runs waits for it and then looks again, so a
        row committed during a tick is never left for the next poll; further
        requests meanwhile fold into that waiting one. A database error ends the
        tick with a log line; the next tick retries.
        """
        if not self._waiting.acquire(blocking=False):
            return 0  # a tick is already waiting to start: it will see our rows
        with self._busy:
            self._waiting.release()
            with self._asked_lock:
                self._asked = False  # rows committed from now on: this tick sees them
            if self.stopping and not self.outcomes.carried:
                return 0
            try:
                if self.outcomes.carried:
                    with self.app.app_context(), db.engine.connect() as connection:
                        self.outcomes.write_carried(self._store(connection))
                if self.stopping:
                    return 0
                senders = [
                    self._senders.submit(self.drain)
                    for _ in range(self.throttle.current())
                ]
                # Every sender ends before the tick does, even when one failed:
                # a tick that returned early would let the next one overlap it.
                wait(senders)
                finished = sum(sender.result() for sender in senders)
            except SQLAlchemyError as err:
                self.log_database_error(err)
                return 0
            if self._database_failing:
                logger.info("database is back", extra={"action": "db_back"})
            self._database_failing = False
            if self.on_idle is not None:
                # The tick drained what was due: from now on, new rows must wake us.
                self.on_idle()
            return finished

    def drain(self) -> int:
        """Run one sender in this thread, on its own database connection."""
        with self.app.app_context(), db.engine.connect() as database:
            return self.sender.drain(self._store(database))

    def log_database_error(self, err: SQLAlchemyError) -> None:
        """Log a failed tick: with its traceback once, then a line per poll."""
        extra = {"action": "tick_failed", "worker_id": self.worker_id}
        metrics.DATABASE_ERRORS.inc()
        if self._database_failing:
            reason = str(getattr(err, "orig", None) or err).strip().splitlines()
            logger.warning("database still failing: %s", reason[0], extra=extra)
        else:
            logger.exception("database error; retrying at the next poll", extra=extra)
        self._database_failing = True

    def _store(self, connection: Connection) -> OutboxStore:
        """Return a store on ``connection``, fenced by our worker id."""
        return OutboxStore(connection, self.worker_id, self.settings.lease_seconds)
