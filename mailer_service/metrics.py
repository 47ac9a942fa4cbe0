"""The mailer's Prometheus metrics, and the progress that ``/healthz`` judges.

The mailer, the lease, the pause and the outcome writer call the small hooks
below where each event happens; :mod:`mailer_service.web` serves the result.
Labels are bounded: a result is one of three words and a reply code one of
at most 900, never a recipient or an id (those go to the log line).
"""

from __future__ import annotations

import threading
import time

from prometheus_client import Counter, Gauge, Histogram

from mailer_service.store import ClaimedRow

RESULTS = ("sent", "retry", "failed")  # the retry policy's decisions
NO_REPLY = "none"  # reply-code label of an attempt that got no SMTP reply

# Seconds: one SMTP send (bounded by MAIL_TIMEOUT per command) ...
SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# ... from commit to accepted, which includes backoff after failures ...
DELAY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)
# ... and one claim statement.
CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

MESSAGES = Counter(
    "mailer_messages",
    "Delivery attempts by result: sent, retry (transient failure), failed, or"
    " suppressed (every recipient on the suppression list: nothing sent).",
    ["result"],
)
SUPPRESSIONS_ADDED = Counter(
    "mailer_suppressions_added",
    "Addresses put on the suppression list after a hard bounce (5.1.x).",
)
SMTP_REPLIES = Counter(
    "mailer_smtp_replies",
    "Delivery attempts by SMTP reply code; code=none when no reply came.",
    ["code"],
)
SEND_SECONDS = Histogram(
    "mailer_smtp_send_duration_seconds",
    "Time to send one message over SMTP, connecting included.",
    buckets=SEND_BUCKETS,
)
COMMIT_TO_ACCEPTED = Histogram(
    "mailer_commit_to_accepted_seconds",
    "From the outbox row's insert to the SMTP server accepting the message.",
    buckets=DELAY_BUCKETS,
)
CLAIM_SECONDS = Histogram(
    "mailer_claim_duration_seconds",
    "Time one claim statement took, its commit included.",
    buckets=CLAIM_BUCKETS,
)
CLAIMS = Counter(
    "mailer_claims",
    "Claim statements by what they found: rows, or empty (nothing was due).",
    ["found"],
)
TICKS = Counter(
    "mailer_ticks",
    "Ticks run: each drains what is due. Wake-ups during a tick fold into one.",
)
COMPLETER_BATCH_ROWS = Histogram(
    "mailer_completer_batch_rows",
    "Outcomes written by one statement of the completer.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
ROWS_RELEASED = Counter(
    "mailer_rows_released",
    "Claimed rows handed back unsent (shutdown, or a lost SMTP connection).",
)
LEASE_RENEWALS = Counter(
    "mailer_lease_renewals", "Lease extensions of a claimed batch."
)
LEASES_LOST = Counter(
    "mailer_leases_lost",
    "Rows skipped before sending because another mailer had taken them.",
)
FENCED_OUT = Counter(
    "mailer_fenced_out_writes",
    "Outcome writes refused because another mailer had taken the row.",
)
SMTP_PAUSES = Counter(
    "mailer_smtp_pauses", "Pauses in claiming after an SMTP connection failed."
)
SMTP_PAUSED = Gauge(
    "mailer_smtp_paused", "1 while claims are paused after an SMTP failure."
)
DATABASE_ERRORS = Counter("mailer_database_errors", "Ticks ended by a database error.")
LAST_PROGRESS = Gauge(
    "mailer_last_progress_timestamp_seconds",
    "Unix time at which a tick or a message last finished.",
)

for _result in RESULTS:
    MESSAGES.labels(_result)  # every result shows, at 0, before the first mail
for _found in ("rows", "empty"):
    CLAIMS.labels(_found)


class Progress:
    """When the delivery loop last moved: a tick finished, or a message did."""

    def __init__(self) -> None:
        self._at = time.monotonic()  # starting counts: the first tick needs time
        self._lock = threading.Lock()

    def note(self) -> None:
        """Record progress now."""
        with self._lock:
            self._at = time.monotonic()
        LAST_PROGRESS.set_to_current_time()

    def seconds_since(self) -> float:
        """Return the seconds since the last progress."""
        with self._lock:
            return time.monotonic() - self._at


PROGRESS = Progress()  # one delivery loop per mailer process


def attempt_recorded(
    row: ClaimedRow, result: str, code: int | None, took: float, owned: bool
) -> None:
    """Count one attempt whose outcome was just committed (or fenced out)."""
    MESSAGES.labels(result).inc()
    SMTP_REPLIES.labels(str(code) if code else NO_REPLY).inc()
    SEND_SECONDS.observe(took)
    if result == "sent":
        # The database's clock up to the claim, ours since: no clock skew.
        COMMIT_TO_ACCEPTED.observe(row.age_seconds + time.monotonic() - row.claimed_at)
    if not owned:
        FENCED_OUT.inc()
    PROGRESS.note()
