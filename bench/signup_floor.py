"""Sequential signup latency: the real signup service against its floor.

Both apps are served at once with the same gunicorn settings on the same
database, and one client sends one request at a time, alternating between
them in short runs: on a noisy machine, both see the same noise. No mailer
runs, so only the request path is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import database
from bench.context import Bench
from bench.latency import OUTBOX_APP
from bench.load import LoadResult, run_load
from bench.procs import Child, start_gunicorn
from bench.smtp_sink import free_port

FLOOR_APP = "bench.floor_app:create_app()"
RUN_LENGTH = 10  # requests to one app before switching to the other
WARMUP = 20  # unmeasured requests per app first


@dataclass(frozen=True)
class FloorComparison:
    """One client's latencies against the real app and against the floor."""

    real: LoadResult
    floor: LoadResult

    def ratio(self, q: float) -> float:
        """Return the real app's ``q``-th percentile over the floor's."""
        floor = self.floor.quantile_ms(q)
        return self.real.quantile_ms(q) / floor if floor else 0.0


def merge(total: LoadResult, part: LoadResult) -> None:
    """Add ``part``'s requests to ``total``."""
    total.latencies.extend(part.latencies)
    total.statuses.update(part.statuses)
    total.answered.extend(part.answered)
    total.elapsed += part.elapsed


def _sequential(port: int, emails: list[str]) -> LoadResult:
    """Send ``emails`` one request at a time, from one client."""
    return run_load(port, emails, concurrency=1)


def compare_with_floor(bench: Bench, requests: int) -> FloorComparison:
    """Alternate ``requests`` sequential signups between the real app and the floor."""
    database.truncate(bench.db_url)
    env = bench.outbox_env(bench.sink)
    ports = {"real": free_port(), "floor": free_port()}
    apps = {"real": OUTBOX_APP, "floor": FLOOR_APP}
    results = {name: LoadResult() for name in apps}
    servers: list[Child] = []
    try:
        for name, app in apps.items():
            log = bench.log(f"signup-{name}")
            servers.append(start_gunicorn(app, ports[name], env, log))
        for name, port in ports.items():
            _sequential(port, [f"warm-{name}-{i}@example.com" for i in range(WARMUP)])
        for start in range(0, requests, RUN_LENGTH):
            count = min(RUN_LENGTH, requests - start)
            for name, port in ports.items():
                emails = [f"{name}-{start + i}@example.com" for i in range(count)]
                merge(results[name], _sequential(port, emails))
    finally:
        for server in servers:
            server.stop()
    return FloorComparison(real=results["real"], floor=results["floor"])
