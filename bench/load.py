"""A closed-loop load generator: N client threads, one request at a time each.

Every pattern is driven by this same code in the same process, so their
numbers differ only by what the server does. Each request opens its own
connection: gunicorn's gthread worker keeps a keep-alive connection on the
worker that accepted it, and one worker tends to accept a whole burst of
connections, so keep-alive clients would measure a single worker. A connection
per request spreads the load over the workers, as a proxy in front would.
"""

from __future__ import annotations

import http.client
import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

TIMEOUT = 60.0  # seconds per request; generous, other agents share the 2 cores
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100), interpolating between ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def signup_body(email: str) -> str:
    """Return the form body every pattern's ``POST /signup`` accepts."""
    return urlencode({"email": email})


@dataclass
class LoadResult:
    """What one load run saw: per-request latency, statuses and the wall time."""

    latencies: list[float] = field(default_factory=list)  # seconds, 2xx only
    statuses: Counter[int | str] = field(default_factory=Counter)
    answered: list[str] = field(default_factory=list)  # emails answered 2xx
    elapsed: float = 0.0  # seconds from the first request to the last response

    @property
    def ok(self) -> int:
        """Return how many requests were answered 2xx."""
        return len(self.latencies)

    @property
    def errors(self) -> int:
        """Return how many requests failed or were answered other than 2xx."""
        return sum(self.statuses.values()) - self.ok

    @property
    def throughput(self) -> float:
        """Return 2xx answers per second of wall time."""
        return self.ok / self.elapsed if self.elapsed else 0.0

    def quantile_ms(self, q: float) -> float:
        """Return the ``q``-th percentile latency in milliseconds."""
        return percentile(self.latencies, q) * 1000


def _post(port: int, email: str) -> int:
    """POST one signup on a new connection and read the whole answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("POST", "/signup", body=signup_body(email), headers=FORM)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def run_load(port: int, emails: Sequence[str], concurrency: int) -> LoadResult:
    """POST one signup per email from ``concurrency`` threads; return what happened."""
    result = LoadResult()
    lock = threading.Lock()
    queue = iter(emails)

    def client() -> None:
        """Take the next email until none is left; time each request."""
        while True:
            with lock:
                email = next(queue, None)
            if email is None:
                return
            started = time.perf_counter()
            try:
                status: int | str = _post(port, email)
            except (OSError, http.client.HTTPException) as exc:
                # Counted, never retried: a repeated POST would be a second signup.
                status = type(exc).__name__
            took = time.perf_counter() - started
            with lock:
                result.statuses[status] += 1
                if isinstance(status, int) and 200 <= status < 300:
                    result.latencies.append(took)
                    result.answered.append(email)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    return result
