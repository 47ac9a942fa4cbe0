"""The completer: one database connection writes every SMTP worker's outcomes.

Workers hand each answered attempt to :meth:`Completer.put` and go on to the
next message. A thread writes what has gathered in one fenced statement per
flush (``complete`` in queries/delivery_postgresql.sql), every FLUSH_SECONDS or
as soon as FLUSH_ROWS are waiting, like River's jobcompleter.

The backlog is bounded: when it is full (the database is slow or failing),
``put`` blocks, so SMTP workers stop sending rather than pile up mail that was
sent but not recorded. What a ``kill -9`` sends again is therefore at most the
messages in flight plus this backlog (docs/delivery.md). Outcomes the database
refused stay in the backlog and are written, still fenced, once it answers.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailer_service import metrics
from mailer_service.outcomes import Finished, Outcomes
from mailer_service.store import OutboxStore
from outbox_contract.database import first_line

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.01  # the longest an outcome waits for others to share its write
FLUSH_ROWS = 500  # write at once when this many outcomes wait; the most per write
BACKLOG_PER_WORKER = 2  # outcomes each SMTP worker may have waiting, at most ...
MIN_BACKLOG = 16  # ... and never fewer than this in all
RETRY_SECONDS = 0.5  # wait after a failed write before the next try
FINAL_TRIES = 3  # failed writes at the end of a tick before its outcomes are carried


def backlog_for(concurrency: int) -> int:
    """Return the most outcomes a mailer of ``concurrency`` keeps unwritten."""
    return max(MIN_BACKLOG, BACKLOG_PER_WORKER * concurrency)


class Completer:
    """A bounded backlog of outcomes and the thread that writes them in batches."""

    def __init__(self, outcomes: Outcomes, mailer_id: str, concurrency: int) -> None:
        self.outcomes = outcomes
        self.mailer_id = mailer_id
        self.backlog = backlog_for(concurrency)
        self.flush_rows = min(FLUSH_ROWS, self.backlog)  # write at once at this many
        self.error: SQLAlchemyError | None = None  # the last failed write's error
        self._waiting: list[Finished] = []  # answered, not yet written
        self._changed = threading.Condition()
        self._ending = False  # the tick has no more outcomes to give
        self._writing = False  # run() is going: a full backlog will drain

    @property
    def carried(self) -> int:
        """Return how many outcomes wait to be written."""
        with self._changed:
            return len(self._waiting)

    def put(self, done: Finished) -> None:
        """Queue one outcome; block while the backlog is full or writes fail."""
        with self._changed:
            while self._writing and (
                len(self._waiting) >= self.backlog or self.error is not None
            ):
                self._changed.wait()
            self._waiting.append(done)
            if len(self._waiting) in (1, self.flush_rows):
                self._changed.notify_all()

    def run(self, engine: Engine, lease_seconds: float) -> None:
        """Write outcomes until :meth:`end` is called and nothing is left.

        Runs in a thread of its own for one tick. After FINAL_TRIES failed
        writes at the end, it returns with the outcomes still waiting: the
        next tick writes them first.
        """
        try:
            self._write_until_ended(engine, lease_seconds)
        finally:
            with self._changed:
                self._writing = False  # a put no longer waits: it is carried
                self._changed.notify_all()

    def _write_until_ended(self, engine: Engine, lease_seconds: float) -> None:
        """The loop of :meth:`run`: gather, write, repeat."""
        failures = 0
        while True:
            with self._changed:
                while not self._waiting and not self._ending:
                    self._changed.wait()
                if not self._waiting:
                    return
                if len(self._waiting) < self.flush_rows and not self._ending:
                    self._changed.wait(FLUSH_SECONDS)  # let others join the write
                batch = self._waiting[:FLUSH_ROWS]
                ending = self._ending
            try:
                self._write(engine, lease_seconds, batch)
            except SQLAlchemyError as err:
                failures += 1
                self._failed(err, failures)
                if ending and failures >= FINAL_TRIES:
                    return
                time.sleep(RETRY_SECONDS)
                continue
            failures = 0
            with self._changed:
                self.error = None
                del self._waiting[: len(batch)]
                self._changed.notify_all()

    def wait_until_written(self) -> None:
        """Wait until every waiting outcome is written, or a write fails."""
        with self._changed:
            while self._waiting and self._writing and self.error is None:
                self._changed.wait()

    def end(self) -> None:
        """Tell :meth:`run` that no more outcomes come: write the rest and return."""
        with self._changed:
            self._ending = True
            self._changed.notify_all()

    def restart(self) -> None:
        """Get ready for the next tick's :meth:`run` (carried outcomes stay)."""
        with self._changed:
            self._ending = False
            self._writing = True  # from now until run() returns
            self.error = None  # the new tick tries again

    def _write(
        self, engine: Engine, lease_seconds: float, batch: list[Finished]
    ) -> None:
        """Write one batch, fenced, then report each outcome."""
        completions = [self.outcomes.completion(done) for done in batch]
        with engine.connect() as connection:
            store = OutboxStore(connection, self.mailer_id, lease_seconds)
            owned = store.complete(completions)
            metrics.COMPLETER_BATCH_ROWS.observe(len(batch))
            for done, completion in zip(batch, completions, strict=True):
                self.outcomes.written(
                    store, done, completion, done.row.id in owned, self.mailer_id
                )

    def _failed(self, err: SQLAlchemyError, failures: int) -> None:
        """Log a failed write: with its traceback the first time only."""
        with self._changed:
            self.error = err  # SMTP workers wait until a write works again
            self._changed.notify_all()  # ... and the tick stops waiting to claim
        metrics.DATABASE_ERRORS.inc()
        extra = {"action": "complete_failed", "mailer_id": self.mailer_id}
        if failures == 1:
            logger.exception("could not write outcomes; retrying", extra=extra)
        else:
            logger.warning(
                "outcomes still not written: %s", first_line(err), extra=extra
            )
