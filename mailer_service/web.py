"""The mailer's HTTP port: ``/metrics`` for Prometheus, ``/healthz`` for a supervisor.

Off unless ``MAILER_METRICS_PORT`` is set. It binds ``MAILER_METRICS_HOST``,
127.0.0.1 by default; a container sets 0.0.0.0 so Prometheus can reach it.
Nothing served here names a recipient, so the port may face the network.
A wsgiref server in a daemon thread is enough: a scrape every few seconds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from sqlalchemy import Engine

from mailer_service import metrics
from mailer_service.config import LEASE_TIMEOUT_RATIO, MailerSettings
from mailer_service.metrics import Progress
from mailer_service.pause import SmtpPause
from outbox_contract.metrics import RegistryView, queue_registry
from outbox_contract.settings import ConfigError, parse_int, raw

logger = logging.getLogger(__name__)

DEFAULT_METRICS_HOST = "127.0.0.1"  # only this host, unless told otherwise
STALE_ROUNDS = 3  # /healthz fails after this many rounds without progress


class Observed(Protocol):
    """What the metrics port reads of the delivery loop (``mailer.Mailer``).

    A protocol rather than an import: the port never loads the engine.
    """

    settings: MailerSettings
    pause: SmtpPause


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_address(
    environ: Mapping[str, str] = os.environ,
) -> tuple[str, int] | None:
    """Read ``MAILER_METRICS_HOST`` and ``MAILER_METRICS_PORT``; None means off."""
    host = raw(environ, "MAILER_METRICS_HOST") or DEFAULT_METRICS_HOST
    if raw(environ, "MAILER_METRICS_PORT") is None:
        if raw(environ, "MAILER_METRICS_HOST") is not None:
            raise ConfigError(
                "MAILER_METRICS_HOST is set but MAILER_METRICS_PORT is not"
            )
        return None
    port = parse_int(environ, "MAILER_METRICS_PORT", 0, minimum=1, maximum=65535)
    return host, port


def stale_after(settings: MailerSettings) -> float:
    """Return the seconds without progress after which the mailer counts as wedged.

    A round is a poll interval, or one message's worst-case send (the bound the
    lease is sized for) when that is longer: a sender may spend that long on
    one slow server without anything finishing, and that is not a wedge.
    """
    send = LEASE_TIMEOUT_RATIO * settings.mail_timeout
    return STALE_ROUNDS * max(settings.poll_interval, send)


class MetricsApp:
    """The WSGI app: Prometheus' exposition and a liveness check."""

    def __init__(
        self, registry: CollectorRegistry, progress: Progress, stale_after: float
    ) -> None:
        self.metrics = make_wsgi_app(registry)
        self.progress = progress
        self.stale_after = stale_after

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Route ``/metrics`` and ``/healthz``; anything else is 404."""
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self.metrics(environ, start_response)
        if path == "/healthz":
            return self.healthz(start_response)
        return _json(start_response, "404 Not Found", {"error": "not found"})

    def healthz(self, start_response: StartResponse) -> Iterable[bytes]:
        """200 while the delivery loop moves; 503 once it has stalled."""
        idle = self.progress.seconds_since()
        healthy = idle <= self.stale_after
        body = {
            "status": "ok" if healthy else "stalled",
            "seconds_since_progress": round(idle, 3),
            "stale_after_seconds": self.stale_after,
        }
        status = "200 OK" if healthy else "503 Service Unavailable"
        return _json(start_response, status, body)


def _json(
    start_response: StartResponse, status: str, body: dict[str, Any]
) -> list[bytes]:
    """Answer with a small JSON body."""
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [payload]


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so a slow scrape blocks no probe."""

    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """Request lines go to the debug log, not stderr: a scrape is not news."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log one request at debug level."""
        logger.debug(format, *args, extra={"action": "http"})


def serve_in_background(app: Any, host: str, port: int) -> WSGIServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; return the server."""
    server = make_server(
        host, port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, name="metrics-http", daemon=True
    )
    thread.start()
    return server


def start_metrics_server(
    mailer: Observed, engine: Engine, address: tuple[str, int]
) -> WSGIServer:
    """Serve the mailer's metrics and health on ``address`` from a daemon thread.

    The queue gauges ask the outbox through ``engine``, the mailer's own.
    """
    registry = queue_registry(engine, RegistryView(REGISTRY))
    metrics.SMTP_PAUSED.set_function(lambda: float(mailer.pause.active))
    app = MetricsApp(registry, metrics.PROGRESS, stale_after(mailer.settings))
    server = serve_in_background(app, *address)
    logger.info(
        "serving /metrics and /healthz on http://%s:%d",
        *server.server_address[:2],
        extra={"action": "metrics_listen"},
    )
    return server
