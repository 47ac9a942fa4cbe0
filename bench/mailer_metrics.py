"""The mailer's work counters, read from its ``/metrics`` as Prometheus would.

A mailer started with ``MAILER_METRICS_PORT`` serves its counters; a phase
reads them before and after what it measures and keeps the difference. Read
are the counters that say how the mailer was woken and what it cost the
database: ticks run, claim statements by whether they found due rows, and the
completer's statements with the outcome rows they wrote (the count and sum of
its batch-size histogram).
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass, fields

from prometheus_client.parser import text_string_to_metric_families

from bench.procs import Child

TICKS = "mailer_ticks_total"
CLAIMS = "mailer_claims_total"  # labelled found="rows" or found="empty"
COMPLETER_STATEMENTS = "mailer_completer_batch_rows_count"  # one per write
COMPLETER_ROWS = "mailer_completer_batch_rows_sum"  # outcome rows written
# The samples WorkCounts holds, in its fields' order: (name, value of "found").
WANTED = (
    (TICKS, ""),
    (CLAIMS, "rows"),
    (CLAIMS, "empty"),
    (COMPLETER_STATEMENTS, ""),
    (COMPLETER_ROWS, ""),
)
SCRAPE_TIMEOUT = 10.0  # seconds per request; the machine is shared
READY_TIMEOUT = 60.0  # seconds for a starting mailer to serve /metrics
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class WorkCounts:
    """A mailer's ticks, claim statements and completer statements, as counted."""

    ticks: int
    claims_with_rows: int
    empty_claims: int
    completer_statements: int  # writes of outcomes, one statement each
    completer_rows: int  # outcome rows those statements wrote

    @property
    def claims(self) -> int:
        """Return every claim statement, with rows or empty."""
        return self.claims_with_rows + self.empty_claims

    def since(self, earlier: WorkCounts) -> WorkCounts:
        """Return what was counted after ``earlier`` (the same process's counters)."""
        return WorkCounts(
            *(getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self))
        )

    def __add__(self, other: WorkCounts) -> WorkCounts:
        """Return the two counts summed: two mailers' work, say."""
        return WorkCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )


NO_WORK = WorkCounts(0, 0, 0, 0, 0)  # the start of a sum


def _sample_name(name: str, label: str) -> str:
    """Return a sample's name as an exposition writes it, with its label if any."""
    return f"{name}{{found={label!r}}}" if label else name


def parse_work_counts(exposition: str) -> WorkCounts:
    """Return the work counters of a text exposition; fail if one is missing."""
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            key = sample.name, sample.labels.get("found", "")
            if key in WANTED:
                found[key] = sample.value
    missing = [_sample_name(*key) for key in WANTED if key not in found]
    if missing:
        raise ValueError(f"the mailer's metrics lack {', '.join(missing)}")
    # A histogram's sum is a float in the exposition; these are whole rows.
    return WorkCounts(*(round(found[key]) for key in WANTED))


def scrape(port: int) -> WorkCounts:
    """Read the work counters of the mailer serving metrics on ``port``."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as response:
        return parse_work_counts(response.read().decode())


def wait_serving(mailer: Child, port: int) -> WorkCounts:
    """Wait until ``mailer`` serves its metrics on ``port``; return the first read."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if mailer.process.poll() is not None:
            raise RuntimeError(f"the mailer exited:\n{mailer.tail()}")
        try:
            return scrape(port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the mailer serves no metrics on {port}:\n{mailer.tail()}"
                ) from None
        time.sleep(POLL_SECONDS)
