"""The status page (``outbox serve``): where the outbox stands, for the person on call.

A read-only page: rows per status, the oldest due row's age, sent and failed
per minute over the last hour (an SVG chart drawn here, nothing from a CDN),
the latest failures with their ``last_error``, and a lookup by recipient.

It shows recipients and SMTP errors, which are personal data, so it is a
separate process bound to 127.0.0.1 by default, not part of the mailer's
metrics port that Prometheus reaches over the network. It needs only
``DATABASE_URL``, so it works while every mailer is down. Every value from the
table goes through Jinja's autoescaping, and the Content-Security-Policy
forbids scripts outright.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from wsgiref.simple_server import make_server

from flask import Flask, Response, render_template, request
from sqlalchemy import Engine

from mailer_service.admin import format_age
from mailer_service.store import load_queries
from mailer_service.web import QuietHandler, ThreadingWSGIServer

logger = logging.getLogger(__name__)

MINUTES = 60  # the chart's span, one bar pair per minute
FAILURES_SHOWN = 20  # rows in "latest failures"
LOOKUP_LIMIT = 50  # rows shown for one recipient
MAX_ADDRESS_LENGTH = 254  # characters, as the signup service accepts

# The chart's geometry, in SVG user units.
CHART_WIDTH, CHART_HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 30  # margins for the axis labels
SLOT = (CHART_WIDTH - LEFT - RIGHT) / MINUTES  # one minute's width

SECURITY_HEADERS = {
    # No script at all: even an escaping mistake could not run one.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a looked-up address is in the URL
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: a count at a minute, placed in SVG units."""

    kind: str  # "sent" or "failed"
    minutes_ago: int
    count: int
    x: float
    y: float
    width: float
    height: float


def chart_bars(per_minute: dict[int, tuple[int, int]]) -> tuple[list[Bar], int]:
    """Place a bar for every nonzero (sent, failed) count; return them and the top."""
    # A row stamped a moment in the future, or an hour ago exactly: not shown.
    shown = {m: pair for m, pair in per_minute.items() if 0 <= m < MINUTES}
    top = max([1, *(max(pair) for pair in shown.values())])
    plot_height = CHART_HEIGHT - TOP - BOTTOM
    bars = []
    for minutes_ago, counts in sorted(shown.items()):
        slot_x = LEFT + (MINUTES - 1 - minutes_ago) * SLOT
        for offset, kind, count in ((0, "sent", counts[0]), (1, "failed", counts[1])):
            if count:
                height = plot_height * count / top
                bars.append(
                    Bar(
                        kind=kind,
                        minutes_ago=minutes_ago,
                        count=count,
                        x=round(slot_x + offset * SLOT / 2, 2),
                        y=round(TOP + plot_height - height, 2),
                        width=round(SLOT / 2 - 1, 2),
                        height=round(height, 2),
                    )
                )
    return bars, top


def when(value: datetime | str | None) -> str:
    """Render a timestamp as UTC to the second (SQLite hands back text)."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{value[:19]} UTC"


class StatusPage:
    """Reads what the page shows, with one connection per page view."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect.name
        self.queries = {
            **load_queries(f"status_{dialect}"),
            "summary": load_queries(f"admin_{dialect}")["summary"],
        }

    def read(self, recipient: str | None) -> dict[str, Any]:
        """Return everything the template needs, read in one transaction."""
        q = self.queries
        with self.engine.connect() as connection:
            summary = [row._asdict() for row in connection.execute(q["summary"])]
            minutes = connection.execute(q["per_minute"]).all()
            failures = connection.execute(
                q["latest_failures"], {"limit": FAILURES_SHOWN}
            ).all()
            found = None
            if recipient:
                found = connection.execute(
                    q["by_recipient"], {"recipient": recipient, "limit": LOOKUP_LIMIT}
                ).all()
        per_minute = {int(m): (int(sent), int(failed)) for m, sent, failed in minutes}
        bars, top = chart_bars(per_minute)
        pending = next(row for row in summary if row["status"] == "pending")
        return {
            "summary": summary,
            "oldest_due": pending["oldest_due_age_seconds"],
            "bars": bars,
            "top": top,
            "sent_last_hour": sum(sent for sent, _ in per_minute.values()),
            "failed_last_hour": sum(failed for _, failed in per_minute.values()),
            "failures": failures,
            "recipient": recipient,
            "found": found,
        }


def create_status_app(engine: Engine) -> Flask:
    """Build the status page's Flask app on ``engine``."""
    app = Flask(__name__)
    page = StatusPage(engine)
    app.jinja_env.globals.update(
        format_age=format_age,
        when=when,
        chart={"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": LEFT},
        chart_bottom=CHART_HEIGHT - BOTTOM,
        chart_top=TOP,
    )

    @app.get("/")
    def status() -> Response:
        """The whole page; ``?recipient=`` adds that address's rows."""
        recipient = request.args.get("recipient", "").strip()[:MAX_ADDRESS_LENGTH]
        html = render_template(
            "status.html",
            now=datetime.now(UTC),
            **page.read(recipient or None),
        )
        return Response(html, headers=SECURITY_HEADERS)

    return app


def serve_status_page(engine: Engine, host: str, port: int) -> None:
    """Serve the page on ``host:port`` until SIGTERM or SIGINT."""
    server = make_server(
        host,
        port,
        create_status_app(engine),
        server_class=ThreadingWSGIServer,
        handler_class=QuietHandler,
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        """Stop serving; shutdown() waits for the loop, so not from this thread."""
        logger.info("received %s; stopping", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info(
        "status page on http://%s:%d/", host, server.server_port,
        extra={"action": "status_listen"},
    )  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server_close()
    logger.info("status page stopped", extra={"action": "stop"})
