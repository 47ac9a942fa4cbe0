"""The delivery loop: claim due rows, send them over one SMTP connection, record each.

Each outcome is committed as soon as it is known, so a crash repeats at most
the one message in flight. No transaction is open while SMTP is talked to.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from mailer_service import db
from mailer_service.config import RelaySettings
from mailer_service.lease import Lease
from mailer_service.policy import DELIVERY_ERRORS, Failure, backoff_delay, classify
from mailer_service.smtp import TimeoutConnection, build_message
from mailer_service.store import ClaimedRow, OutboxStore

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 1000  # characters of an error kept in outbox.last_error
MAX_SMTP_PAUSE = 60.0  # seconds, the longest pause in claiming after SMTP failed


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
        self.rng = rng or random.Random()
        self._stopping = threading.Event()
        self._busy = threading.Lock()
        # What a database error kept us from writing: outcomes of messages the
        # server already accepted or refused, and rows we still hold. Written at
        # the next tick, still fenced, so a database blip duplicates nothing.
        self._unrecorded: list[tuple[ClaimedRow, Failure | None, float]] = []
        self._unreleased: set[int] = set()
        self._database_failing = False  # log the traceback once per outage
        self._smtp_pause = 0.0  # seconds; grows while SMTP connections keep failing
        self.smtp_paused_until = 0.0  # monotonic time before which nothing is claimed

    def stop(self) -> None:
        """Ask the relay to stop claiming and to release what it holds."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Tell whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def join(self) -> None:
        """Wait until the tick in progress, if any, has finished."""
        with self._busy:
            pass

    def run_tick(self) -> int:
        """Deliver due rows until none are left or the relay stops; return the count.

        A database error ends the tick with a log line; the next tick retries.
        """
        with self._busy, self.app.app_context():
            store = OutboxStore(db.session, self.worker_id, self.settings.lease_seconds)
            finished = 0
            try:
                self.write_carried(store)
                while not self.stopping and time.monotonic() >= self.smtp_paused_until:
                    since = time.monotonic()
                    rows = store.claim_due_rows(self.settings.batch_size)
                    if not rows:
                        break
                    count, healthy = self.deliver_batch(store, rows, since)
                    finished += count
                    if not healthy:
                        self.pause_claims()
                        break
                    self._smtp_pause = 0.0
                    if len(rows) < self.settings.batch_size:
                        break
            except SQLAlchemyError as err:
                self.log_database_error(err)
            else:
                if self._database_failing:
                    logger.info("database is back", extra={"action": "db_back"})
                self._database_failing = False
            return finished

    def pause_claims(self) -> None:
        """Leave an unreachable SMTP server alone for a while, doubling each time.

        Otherwise every poll would claim a batch, charge one row an attempt for
        the dead connection and release the rest: a storm of writes and connects.
        """
        self._smtp_pause = min(
            max(self.settings.poll_interval, 2 * self._smtp_pause), MAX_SMTP_PAUSE
        )
        self.smtp_paused_until = time.monotonic() + self._smtp_pause
        logger.warning(
            "SMTP connection failed; no claims for %.1fs",
            self._smtp_pause,
            extra={"action": "smtp_pause", "worker_id": self.worker_id},
        )

    def log_database_error(self, err: SQLAlchemyError) -> None:
        """Log a failed tick: with its traceback once, then a line per poll."""
        extra = {"action": "tick_failed", "worker_id": self.worker_id}
        if self._database_failing:
            reason = str(getattr(err, "orig", None) or err).strip().splitlines()
            logger.warning("database still failing: %s", reason[0], extra=extra)
        else:
            logger.exception("database error; retrying at the next poll", extra=extra)
        self._database_failing = True

    def write_carried(self, store: OutboxStore) -> None:
        """Record the outcomes and releases that a database error held back."""
        while self._unrecorded:
            row, failure, took = self._unrecorded[0]
            self.record(store, row, failure, took)
            self._unrecorded.pop(0)
        if self._unreleased:
            store.release(sorted(self._unreleased))
            self._unreleased.clear()

    def deliver_batch(
        self, store: OutboxStore, rows: list[ClaimedRow], since: float
    ) -> tuple[int, bool]:
        """Send ``rows`` over one connection; return (rows finished, connection ok)."""
        lease = Lease(store, rows, since)
        connection = TimeoutConnection(self.settings.mail_timeout)
        finished, connection_lost = 0, False
        try:
            for row in rows:
                if self.stopping or connection_lost:
                    break
                if not lease.holds(row.id):
                    logger.warning(
                        "outbox_id=%d lease lost before sending; skipped",
                        row.id,
                        extra={"action": "lease_lost", "outbox_id": row.id},
                    )
                    continue
                started = time.monotonic()
                failure = self.send(connection, row)
                lease.finish(row.id)
                outcome = (row, failure, time.monotonic() - started)
                try:
                    self.record(store, *outcome)
                except SQLAlchemyError:
                    self._unrecorded.append(outcome)
                    raise
                finished += 1
                connection_lost = failure is not None and failure.connection_lost
            # Whatever was not attempted goes back now, not when the lease ends.
            released = lease.release_all()
            if released:
                logger.info(
                    "released %d unsent rows", released, extra={"action": "release"}
                )
        except SQLAlchemyError:
            self._unreleased.update(lease.held)
            raise
        finally:
            connection.close()
        return finished, not connection_lost

    def send(self, connection: TimeoutConnection, row: ClaimedRow) -> Failure | None:
        """Try to deliver ``row`` once; return None on success, else the Failure."""
        try:
            message = build_message(row)
        except DELIVERY_ERRORS as exc:
            return classify(exc)
        if not connection.usable:
            try:
                connection.open()
            except DELIVERY_ERRORS as exc:
                return classify(exc, connecting=True)
        try:
            connection.send(message)
        except DELIVERY_ERRORS as exc:
            failure = classify(exc)
        except Exception as exc:  # a bug, not a delivery problem: keep its traceback
            logger.exception("unexpected error sending outbox_id=%d", row.id)
            failure = Failure(f"{type(exc).__name__}: {exc}", connection_lost=True)
        else:
            return None
        if failure.connection_lost or failure.code is None:
            # Without an SMTP reply, smtplib did not reset the session: it may be
            # mid-transaction. Start the next message on a fresh connection.
            connection.close()
        return failure

    def record(
        self, store: OutboxStore, row: ClaimedRow, failure: Failure | None, took: float
    ) -> None:
        """Commit the outcome of one attempt, fenced by this worker's id."""
        attempt = row.attempts + 1
        if failure is None:
            result, owned = "sent", store.mark_sent(row.id)
        elif failure.permanent or attempt >= self.settings.max_attempts:
            error = failure.error[:MAX_ERROR_LENGTH]
            result, owned = "failed", store.mark_failed(row.id, error)
        else:
            delay = backoff_delay(
                attempt,
                self.settings.backoff_seconds,
                self.settings.backoff_max_seconds,
                self.rng,
            )
            error = failure.error[:MAX_ERROR_LENGTH]
            result, owned = "retry", store.mark_retry(row.id, error, delay)
        level = logging.INFO if failure is None else logging.WARNING
        logger.log(
            level,
            "outbox_id=%d attempt=%d result=%s code=%s latency_ms=%.0f%s",
            row.id,
            attempt,
            result if owned else f"{result}-unrecorded",
            failure.code if failure else 250,
            took * 1000,
            f" error={failure.error!r}" if failure else "",
            extra={"action": "deliver", "outbox_id": row.id, "result": result},
        )
        if not owned:
            logger.warning(
                "outbox_id=%d was taken by another worker; outcome not recorded",
                row.id,
                extra={"action": "fenced_out", "outbox_id": row.id},
            )
