"""The delivery loop: a tick runs the pipeline, and ticks follow one another.

The delivery loop (:mod:`mailer_service.wakeup`) calls :meth:`Mailer.run_tick`
whenever it is woken: every poll interval, and whenever the listener hears of
new rows. A tick is three stages, each a module:

- the claimer (:mod:`mailer_service.claimer`) leases due rows on one database
  connection and keeps the SMTP workers' prefetch filled;
- ``MAILER_CONCURRENCY`` SMTP workers (:mod:`mailer_service.sending`) send
  them, holding no database connection;
- the completer (:mod:`mailer_service.completer`) writes their outcomes in
  batches on one other connection.

So a mailer uses two database connections whatever its concurrency, and a
third for the listener. The tick ends once nothing is due and every outcome
is written.
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
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from mailer_service import metrics
from mailer_service.app import db
from mailer_service.claimer import Claimer, Prefetch
from mailer_service.completer import Completer
from mailer_service.config import MailerSettings
from mailer_service.limits import ConnectionSlots, SendRate, Throttle
from mailer_service.outcomes import Outcomes
from mailer_service.pause import SmtpPause
from mailer_service.policy import RetryPolicy
from mailer_service.sending import SmtpWorkers
from mailer_service.store import OutboxStore
from outbox_contract.database import first_line

logger = logging.getLogger(__name__)


def new_mailer_id() -> str:
    """Return an id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Mailer:
    """Moves due outbox rows to SMTP; ``run_tick`` is the scheduler's job."""

    def __init__(
        self,
        app: Flask,
        settings: MailerSettings,
        mailer_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.mailer_id = mailer_id or new_mailer_id()
        # Called after each tick that drained what was due (the listener's idle()).
        self.on_idle: Callable[[], None] | None = None
        policy = RetryPolicy(
            settings.max_attempts,
            settings.backoff_seconds,
            settings.backoff_max_seconds,
            rng or random.Random(),
        )
        outcomes = Outcomes(policy, settings.suppress_hard_bounces)
        self.completer = Completer(outcomes, self.mailer_id, settings.concurrency)
        self.pause = SmtpPause(settings.poll_interval)
        self.throttle = Throttle(settings.concurrency)
        self._stopping = threading.Event()
        self.workers = SmtpWorkers(
            settings,
            self.mailer_id,
            self._stopping,
            self.pause,
            self.throttle,
            SendRate(settings.rate_limit, self._stopping)
            if settings.rate_limit
            else None,
            ConnectionSlots(settings.max_connections)
            if settings.max_connections
            else None,
        )
        self._busy = threading.Lock()  # one tick at a time
        self._senders = ThreadPoolExecutor(
            settings.concurrency, thread_name_prefix="smtp"
        )
        self._unreleased: set[int] = set()  # rows a database error kept us holding
        self._database_failing = False  # log the traceback once per outage

    def stop(self) -> None:
        """Ask the mailer to stop claiming and to release what it holds."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Tell whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def join(self) -> None:
        """Wait until the tick in progress, if any, has finished."""
        with self._busy:
            self._senders.shutdown(wait=True)

    def run_tick(self) -> int:
        """Deliver due rows until none are left or the mailer stops; return the count.

        A database error ends the tick with a log line; outcomes not yet
        written stay with the completer, and the next tick writes them first.
        """
        with self._busy:
            if self.stopping and not (self.completer.carried or self._unreleased):
                return 0
            with self.app.app_context():
                engine = db.engine
            self.completer.restart()
            writer = threading.Thread(
                target=self.completer.run,
                args=(engine, self.settings.lease_seconds),
                name="completer",
            )
            writer.start()
            error: SQLAlchemyError | None = None
            finished = 0
            try:
                finished = self._deliver(engine)
            except SQLAlchemyError as err:
                error = err
            finally:
                self.completer.end()
                writer.join()
            if error is None and self.completer.carried:
                error = self.completer.error
            if error is not None:
                self.log_database_error(error)
                return 0
            if self._database_failing:
                logger.info("database is back", extra={"action": "db_back"})
            self._database_failing = False
            if self.on_idle is not None:
                # The tick drained what was due: from now on, new rows must wake us.
                self.on_idle()
            return finished

    def _deliver(self, engine: Engine) -> int:
        """Run the claimer here and the SMTP workers in the pool, until drained."""
        with engine.connect() as connection:
            claimer = Claimer(
                self._store(connection),
                self.settings.batch_size,
                self._stopping,
                self.pause,
            )
            # Outcomes a database error held back go first: their rows' leases
            # may have run out, and a claim must not take them back unwritten.
            self.completer.wait_until_written()
            if self._unreleased:
                claimer.held.update(self._unreleased)
                claimer.release_held()
                self._unreleased = set()
            if self.stopping:
                return 0
            workers = self.throttle.current()
            prefetch = Prefetch(workers)
            running = [
                self._senders.submit(self._smtp_worker, prefetch, claimer)
                for _ in range(workers)
            ]
            try:
                claimer.feed(prefetch, halt=lambda: self.completer.error is not None)
            except SQLAlchemyError:
                self.completer.end()  # workers must not wait on a failing database
                raise
            finally:
                # Every worker ends before the tick does, even when one failed:
                # a tick that returned early would let the next one overlap it.
                prefetch.close()
                wait(running)
                self._unreleased |= claimer.held
            return sum(worker.result() for worker in running)

    def _smtp_worker(self, prefetch: Prefetch, claimer: Claimer) -> int:
        """Run one SMTP worker in this thread (Flask-Mail needs the app context)."""
        try:
            with self.app.app_context():
                return self.workers.run(prefetch, claimer, self.completer)
        except BaseException:
            logger.exception("SMTP worker failed", extra={"action": "worker_failed"})
            raise

    def log_database_error(self, err: SQLAlchemyError) -> None:
        """Log a failed tick: with its traceback once, then a line per poll."""
        extra = {"action": "tick_failed", "mailer_id": self.mailer_id}
        metrics.DATABASE_ERRORS.inc()
        if self._database_failing:
            logger.warning("database still failing: %s", first_line(err), extra=extra)
        else:
            logger.error(
                "database error; retrying at the next poll", exc_info=err, extra=extra
            )
        self._database_failing = True

    def _store(self, connection: Connection) -> OutboxStore:
        """Return a store on ``connection``, fenced by our mailer id."""
        return OutboxStore(connection, self.mailer_id, self.settings.lease_seconds)
