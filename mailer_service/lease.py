"""The lease on one claimed batch: which rows this worker still holds."""

from __future__ import annotations

import time

from mailer_service import metrics
from mailer_service.store import ClaimedRow, OutboxStore


class Lease:
    """The rows of one claim that this worker still holds, renewed when half spent."""

    def __init__(
        self, store: OutboxStore, rows: list[ClaimedRow], since: float
    ) -> None:
        self.store = store
        self.held = {row.id for row in rows}
        self.renewed_at = since  # monotonic time taken *before* the claim ran

    def holds(self, row_id: int) -> bool:
        """Tell whether ``row_id`` is still ours with at least half a lease left."""
        if time.monotonic() - self.renewed_at > self.store.lease_seconds / 2:
            started = time.monotonic()
            self.held = self.store.extend_leases(sorted(self.held))
            self.renewed_at = started
            metrics.LEASE_RENEWALS.inc()
        return row_id in self.held

    def finish(self, row_id: int) -> None:
        """Forget ``row_id``: it was attempted, so it is no longer ours to release."""
        self.held.discard(row_id)

    def release_all(self) -> int:
        """Hand every row still held back to pending."""
        released = self.store.release(sorted(self.held))
        self.held.clear()
        return released
