"""The signup service's Prometheus metrics, served at ``GET /metrics``.

Under gunicorn each worker is its own process, so prometheus-client runs in
multiprocess mode: ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR``
before any worker starts, every worker writes its samples to files there, and
the worker that answers a scrape adds them all up. Collectors are not shared
that way, so the queue gauges come from the database once per scrape instead.
Without the variable (``flask run``, tests) the process's own registry serves.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from outbox_contract.metrics import RegistryView, queue_registry
from outbox_contract.settings import raw
from signup_service.database import db

UNMATCHED = "unmatched"  # the endpoint label of a URL no route matched (404, 405)

REQUESTS = Counter(
    "signup_http_requests",
    "HTTP requests answered, by endpoint and status code.",
    ["endpoint", "status"],
)
LATENCY = Histogram(
    "signup_http_request_duration_seconds",
    "Time to answer one HTTP request, by endpoint.",
    ["endpoint"],
)
SIGNUPS = Counter(
    "signup_users_created", "Users created, each with its welcome email queued."
)

bp = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    """Time and count every request of ``app``, and serve ``/metrics``."""
    app.before_request(_start_timer)
    app.after_request(_count_response)
    app.register_blueprint(bp)


def _start_timer() -> None:
    """Note when the request started."""
    g.metrics_started = time.perf_counter()


def _count_response(response: Response) -> Response:
    """Count the response by endpoint and status, and observe its latency."""
    # The endpoint name, never the path: paths are unbounded label values.
    endpoint = request.endpoint or UNMATCHED
    REQUESTS.labels(endpoint, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    return response


def scrape_registry() -> CollectorRegistry:
    """Return what one scrape shows: every worker's samples and the queue gauges."""
    if raw(os.environ, "PROMETHEUS_MULTIPROC_DIR") is None:
        return queue_registry(db.engine, RegistryView(REGISTRY))
    workers = CollectorRegistry()
    MultiProcessCollector(workers)
    return queue_registry(db.engine, RegistryView(workers))


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus' text exposition of the service and the outbox queue."""
    # The format the scraper asks for, as prometheus-client's own server does.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(scrape_registry()), headers={"Content-Type": content_type})
