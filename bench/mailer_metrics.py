"""The mailer's work counters, read from its ``/metrics`` as Prometheus would.

A mailer started with ``MAILER_METRICS_PORT`` serves its counters; a phase
reads them before and after what it measures and keeps the difference. Only
the two counters that say how the mailer was woken are read: ticks run, and
claim statements by whether they found due rows.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bench.procs import Child

TICKS = "mailer_ticks_total"
CLAIMS = "mailer_claims_total"  # labelled found="rows" or found="empty"
SCRAPE_TIMEOUT = 10.0  # seconds per request; the machine is shared
READY_TIMEOUT = 60.0  # seconds for a starting mailer to serve /metrics
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class WorkCounts:
    """A mailer's ticks, and its claim statements that found rows or none."""

    ticks: int
    claims_with_rows: int
    empty_claims: int

    @property
    def claims(self) -> int:
        """Return every claim statement, with rows or empty."""
        return self.claims_with_rows + self.empty_claims

    def since(self, earlier: WorkCounts) -> WorkCounts:
        """Return what was counted after ``earlier`` (the same process's counters)."""
        return WorkCounts(
            self.ticks - earlier.ticks,
            self.claims_with_rows - earlier.claims_with_rows,
            self.empty_claims - earlier.empty_claims,
        )


def parse_work_counts(exposition: str) -> WorkCounts:
    """Return the work counters of a text exposition; fail if one is missing."""
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name in (TICKS, CLAIMS):
                found[sample.name, sample.labels.get("found", "")] = sample.value
    wanted = [(TICKS, ""), (CLAIMS, "rows"), (CLAIMS, "empty")]
    missing = [
        f"{name}{{found={label!r}}}"
        for name, label in wanted
        if (name, label) not in found
    ]
    if missing:
        raise ValueError(f"the mailer's metrics lack {', '.join(missing)}")
    return WorkCounts(*(int(found[key]) for key in wanted))


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
