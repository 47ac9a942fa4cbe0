"""The claimer: one database connection leases due rows for the SMTP workers.

It keeps a small prefetch (:class:`Prefetch`): about as many claimed rows as
there are SMTP workers, so none waits for a row while the next claim runs. It
renews the lease on every row it holds, and at the end hands back whatever no
worker attempted. The workers' fleet-wide limits (the send rate and the
connection slots) and the hold marker run on this same connection, one
statement at a time, so a mailer needs no database connection per SMTP one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailer_service import metrics, suppression
from mailer_service.pause import SmtpPause
from mailer_service.store import ClaimedRow, OutboxStore
from outbox_contract.message import attachment_count

logger = logging.getLogger(__name__)

PREFETCH_PER_WORKER = 2  # claimed rows per SMTP worker, sending or waiting
RENEW_SHARE = 3  # renew leases once a third of their length has passed
LOOK_AGAIN_SECONDS = 0.1  # the longest the claimer waits without looking around


@dataclass(frozen=True)
class Work:
    """A claimed row with what its send needs: attachments and suppressed addresses."""

    row: ClaimedRow
    attachments: list[Any]
    suppressed: frozenset[str]


class Prefetch:
    """Claimed rows waiting for an SMTP worker, and how many workers are busy."""

    def __init__(self, workers: int) -> None:
        self.starting = workers  # workers not yet ready (taking a connection slot)
        self.workers = 0  # workers ready to take rows
        self.sending = 0  # rows taken by a worker and not yet done
        self.closed = False
        self.changes = 0  # counts every change, so a waiter misses none
        self._rows: deque[Work] = deque()
        # One lock, two conditions: a put wakes as many workers as it brings
        # rows, and a worker's progress wakes only the claimer, so hundreds of
        # waiting workers are never all woken for one change.
        lock = threading.Lock()
        self._changed = threading.Condition(lock)  # the claimer waits here
        self._rows_ready = threading.Condition(lock)  # idle workers wait here

    def worker_ready(self, joined: bool) -> None:
        """A worker has started: ``joined`` False if it found no connection slot."""
        with self._changed:
            self.starting -= 1
            self.workers += joined
            self._changed_now()

    def worker_left(self) -> None:
        """A worker has stopped taking rows."""
        with self._changed:
            self.workers -= 1
            self._changed_now()

    def take(self) -> Work | None:
        """Return the next row to send, waiting for one; None once closed."""
        with self._changed:
            while not self._rows and not self.closed:
                self._rows_ready.wait()
            if not self._rows:
                return None
            self.sending += 1
            self._changed_now()
            return self._rows.popleft()

    def done(self) -> None:
        """A worker is done with the row it took."""
        with self._changed:
            self.sending -= 1
            self._changed_now()

    def room(self) -> int:
        """Return how many more rows the prefetch wants, 0 unless at least half."""
        with self._changed:
            capacity = PREFETCH_PER_WORKER * self.workers
            free = capacity - len(self._rows) - self.sending
            return free if free * 2 >= capacity and self.starting == 0 else 0

    def put(self, works: list[Work]) -> None:
        """Add claimed rows for the workers."""
        with self._changed:
            self._rows.extend(works)
            self._rows_ready.notify(len(works))
            self._changed_now()

    def idle(self) -> bool:
        """Tell whether no row waits and none is being sent."""
        with self._changed:
            return not self._rows and self.sending == 0

    def close(self) -> list[Work]:
        """Take no more rows; return those no worker took."""
        with self._changed:
            self.closed = True
            left = list(self._rows)
            self._rows.clear()
            self._rows_ready.notify_all()
            self._changed_now()
            return left

    def wait(self, since: int, timeout: float) -> None:
        """Wait for a change after the count ``since`` (or ``timeout`` seconds)."""
        with self._changed:
            self._changed.wait_for(lambda: self.changes != since, timeout)

    def _changed_now(self) -> None:
        """Count a change and wake the claimer (the lock is held)."""
        self.changes += 1
        self._changed.notify_all()


class Claimer:
    """The rows one tick holds, and the one connection that claims and renews them."""

    def __init__(
        self,
        store: OutboxStore,
        batch_size: int,
        stopping: threading.Event,
        pause: SmtpPause,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.stopping = stopping
        self.pause = pause
        self.held: set[int] = set()  # claimed, neither attempted nor released
        self.claimed: set[int] = set()  # every row claimed this tick
        self.renewed_at = time.monotonic()  # taken before the last claim or renewal
        self._lock = threading.Lock()  # one statement at a time on the connection
        # The held rows have a lock of their own, never held across a statement:
        # a worker finishing a row must not wait for the claimer's next claim.
        self._held_lock = threading.Lock()

    def feed(self, prefetch: Prefetch, halt: Callable[[], bool]) -> None:
        """Claim rows while they are due and workers are free; then wait them out.

        Ends when nothing is due, when the mailer stops or pauses, or when
        ``halt`` says so (the completer cannot write); rows no worker took
        then go back to pending, unattempted.
        """

        def ending() -> bool:
            """Tell whether to stop handing out rows."""
            return self.stopping.is_set() or self.pause.active or halt()

        drained = False
        while not (ending() or drained):
            seen = prefetch.changes
            self.renew_if_due()
            if prefetch.workers == 0 and prefetch.starting == 0:
                break  # no worker found a connection slot, or every one left
            want = min(self.batch_size, prefetch.room())
            if want > 0:
                works, claimed = self.claim(want)
                prefetch.put(works)
                drained = claimed < want
            else:
                prefetch.wait(seen, self.wait_seconds)
        while not prefetch.closed:
            seen = prefetch.changes
            if prefetch.idle():
                break
            if ending() or prefetch.workers == 0:
                prefetch.close()
                break
            self.renew_if_due()
            prefetch.wait(seen, self.wait_seconds)
        prefetch.close()
        while True:  # sends in flight end, still under a live lease
            seen = prefetch.changes
            if not prefetch.sending:
                break
            self.renew_if_due()
            prefetch.wait(seen, self.wait_seconds)
        self.release_held()

    @property
    def wait_seconds(self) -> float:
        """Return the longest wait for a worker before looking around again."""
        return min(self.renew_every, LOOK_AGAIN_SECONDS)

    @property
    def renew_every(self) -> float:
        """Return the seconds between lease renewals."""
        return self.store.lease_seconds / RENEW_SHARE

    def claim(self, size: int) -> tuple[list[Work], int]:
        """Lease up to ``size`` due rows, with their attachments and suppressions.

        Returns the rows to send and how many the claim took in all.
        """
        with self._lock:
            since = time.monotonic()
            claimed = self.store.claim_due_rows(size)
            metrics.CLAIM_SECONDS.observe(time.monotonic() - since)
            metrics.CLAIMS.labels("rows" if claimed else "empty").inc()
            # A row of ours whose lease ran out comes back: it is waiting, in
            # flight or being recorded already, so it must not go out twice.
            rows = [row for row in claimed if row.id not in self.claimed]
            self.claimed.update(row.id for row in rows)
            if not rows:
                return [], len(claimed)
            with self._held_lock:
                if not self.held:
                    self.renewed_at = since  # the lease of every held row starts here
                self.held.update(row.id for row in rows)
            suppressed = suppression.suppressed_in_batch(self.store, rows)
            works = [
                Work(row, self._attachments(row), suppression.for_row(row, suppressed))
                for row in rows
            ]
            return works, len(claimed)

    def renew_if_due(self) -> None:
        """Renew the lease of every held row once a third of it has passed."""
        if time.monotonic() - self.renewed_at > self.renew_every:
            self._renew()

    def keep_lease(self, row_id: int) -> bool:
        """Make sure half a lease is left on ``row_id``, renewing if need be.

        False if another mailer has taken the row (its lease ran out).
        """
        if time.monotonic() - self.renewed_at > self.store.lease_seconds / 2:
            self._renew()
        return row_id in self.held

    def finish(self, row_id: int) -> None:
        """Forget ``row_id``: it was attempted, so it is no longer ours to release."""
        with self._held_lock:
            self.held.discard(row_id)

    def release_held(self) -> int:
        """Hand every row still held back to pending, unattempted."""
        with self._lock:
            with self._held_lock:
                ids = sorted(self.held)
            released = self.store.release(ids)
            with self._held_lock:
                self.held.difference_update(ids)
        metrics.ROWS_RELEASED.inc(released)
        if released:
            logger.info(
                "released %d unsent rows", released, extra={"action": "release"}
            )
        return released

    def mark_started(self, row_id: int) -> bool:
        """Record, durably, that ``row_id``'s send begins now (hold mode)."""
        with self._lock:
            return self.store.mark_started(row_id)

    def take_send_turn(self, interval: float) -> float:
        """Take a turn of the fleet-wide rate; return 0, or the seconds to wait."""
        with self._lock:
            return self.store.take_send_turn(interval)

    def take_connection_slot(self, lock_class: int, slot: int) -> bool:
        """Hold connection slot ``slot`` on this connection's session, if free."""
        with self._lock:
            return self.store.take_connection_slot(lock_class, slot)

    def give_connection_slot(self, lock_class: int, slot: int) -> None:
        """Hand connection slot ``slot`` back."""
        with self._lock:
            self.store.give_connection_slot(lock_class, slot)

    def _renew(self) -> None:
        """Extend the lease of the held rows; forget those another mailer took."""
        with self._lock:
            with self._held_lock:
                ids = sorted(self.held)
            started = time.monotonic()
            if not ids:
                self.renewed_at = started
                return
            still = self.store.extend_leases(ids)
            with self._held_lock:
                self.held -= set(ids) - still
            self.renewed_at = started
        metrics.LEASE_RENEWALS.inc()

    def _attachments(self, row: ClaimedRow) -> list[Any]:
        """Load the row's attachments, only if its stored message counts any."""
        if not attachment_count(row.message):
            return []
        return self.store.load_attachments(row.id)
