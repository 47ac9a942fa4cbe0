"""The status page (``outbox serve``): where the outbox stands, for the person on call.

Rows per status, the oldest due row's age, sent and failed per minute over the
last hour (an SVG chart drawn here, nothing from a CDN), the latest failures
with their ``last_error``, a lookup by recipient, a page per row (headers,
recipients and their outcomes, attachments, attempt history) and the
suppression list. It is read-only unless ``OUTBOX_ADMIN_TOKEN`` is set; then
an operator who gives the token may retry, cancel and unsuppress
(:mod:`mailer_service.status_actions`).

It shows recipients and SMTP errors, which are personal data, so it is a
separate process bound to 127.0.0.1 by default, not part of the mailer's
metrics port that Prometheus reaches over the network. It needs only
``DATABASE_URL``, so it works while every mailer is down. Every value from the
table goes through Jinja's autoescaping, and the Content-Security-Policy
forbids scripts outright.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from wsgiref.simple_server import make_server

import click
from flask import Flask, Response, render_template, request
from sqlalchemy import Engine, Row
from werkzeug.exceptions import HTTPException, NotFound

from mailer_service import status_actions
from mailer_service.admin_show import describe
from mailer_service.database import operator_queries
from mailer_service.formatting import format_age
from mailer_service.status_actions import DONE, MAX_ADDRESS_LENGTH, parse_row_id
from mailer_service.status_auth import Gate, admin_token
from mailer_service.web import QuietHandler, ThreadingWSGIServer
from outbox_contract.settings import ConfigError
from outbox_contract.summary import read_summary

logger = logging.getLogger(__name__)

MINUTES = 60  # the chart's span, one bar pair per minute
FAILURES_SHOWN = 20  # rows in "latest failures"
LOOKUP_LIMIT = 50  # rows shown for one recipient
MAX_FORM_BYTES = 16 * 1024  # a POST body; the forms here send a few hundred bytes

# The chart's geometry, in SVG user units.
CHART_WIDTH, CHART_HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 30  # margins for the axis labels
SLOT = (CHART_WIDTH - LEFT - RIGHT) / MINUTES  # one minute's width

SECURITY_HEADERS = {
    # No script at all: even an escaping mistake could not run one. Forms may
    # post only here, and no other site may frame the page (clickjacking).
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # A looked-up address is in the URL: no other site gets it. Same-origin
    # requests keep theirs, so a form's POST carries an Origin to check
    # (under no-referrer, browsers send "Origin: null").
    "Referrer-Policy": "same-origin",
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
    """Render a timestamp as UTC to the second (SQLite and describe() give text)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return f"{value[:19]} UTC"
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def count_refused(refused: Any) -> int:
    """Count the refused recipients of an attempt (JSON text on SQLite)."""
    return len(json.loads(refused) if isinstance(refused, str) else refused or {})


def unreadable(row: Row, parts: list[Row], attempts: list[Row], why: str) -> dict:
    """Show a row describe() cannot read (written by hand, or redacted) as stored."""
    columns = row._asdict()
    return {
        **{k: v for k, v in columns.items() if k not in ("message", "refused")},
        "unreadable": why,
        "headers": [],
        "recipients": [{"kind": "to", "name": "", "address": row.recipient,
                        "outcome": row.status, "code": None, "reply": None}],
        "attachments": [{**p._asdict(), "bytes": p.size} for p in parts],
        "history": [a._asdict() for a in attempts],
    }  # fmt: skip


class StatusPage:
    """Reads what the pages show, with one connection per page view."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queries = operator_queries(engine.dialect.name)

    def read(self, recipient: str | None) -> dict[str, Any]:
        """Return everything the main page needs, read in one transaction."""
        q = self.queries
        found = suppressed = None
        with self.engine.connect() as connection:
            summary = read_summary(connection)
            minutes = connection.execute(q["per_minute"]).all()
            failures = connection.execute(
                q["latest_failures"], {"limit": FAILURES_SHOWN}
            ).all()
            if recipient:
                found = connection.execute(
                    q["by_recipient"], {"recipient": recipient, "limit": LOOKUP_LIMIT}
                ).all()
                suppressed = connection.execute(
                    q["suppressed_among"], {"addresses": [recipient.lower()]}
                ).first()
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
            "recipient_suppressed": suppressed is not None,
        }

    def read_row(self, row_id: int) -> dict[str, Any] | None:
        """Return one row as `outbox show` describes it, or None if there is none."""
        q = self.queries
        with self.engine.connect() as connection:
            row = connection.execute(q["show_row"], {"id": row_id}).first()
            if row is None:
                return None
            parts = connection.execute(q["show_attachments"], {"id": row_id}).all()
            attempts = connection.execute(q["show_attempts"], {"id": row_id}).all()
            try:
                shown = {**describe(row, parts, attempts), "unreadable": None}
            except click.ClickException as err:
                shown = unreadable(row, parts, attempts, err.message)
            addresses = sorted({r["address"].lower() for r in shown["recipients"]})
            suppressed = set(
                connection.execute(
                    q["suppressed_among"], {"addresses": addresses}
                ).scalars()
            )
        return {"row": shown, "suppressed": suppressed}

    def read_suppressions(self) -> list[Row]:
        """Return the suppression list, newest first."""
        with self.engine.connect() as connection:
            return connection.execute(self.queries["suppressions"]).all()


def create_status_app(engine: Engine, admin_token: str | None = None) -> Flask:
    """Build the status page's Flask app; ``admin_token`` turns the actions on."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    page = StatusPage(engine)
    if admin_token is not None:
        status_actions.init_app(app, engine, Gate(admin_token))
    app.jinja_env.globals.update(
        format_age=format_age,
        when=when,
        count_refused=count_refused,
        chart={"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": LEFT},
        chart_bottom=CHART_HEIGHT - BOTTOM,
        chart_top=TOP,
    )

    def render(template: str, **values: Any) -> str:
        """Render a page with the time and the notice a redirect asked for."""
        notice = DONE.get(request.args.get("done", ""))
        return render_template(template, now=datetime.now(UTC), notice=notice, **values)

    @app.get("/")
    def status() -> str:
        """The whole page; ``?recipient=`` adds that address's rows."""
        recipient = request.args.get("recipient", "").strip()[:MAX_ADDRESS_LENGTH]
        return render("status.html", **page.read(recipient or None))

    @app.get("/rows/<row_id>")
    def row(row_id: str) -> str:
        """One row: headers, recipients and outcomes, attachments, history."""
        number = parse_row_id(row_id)
        found = page.read_row(number)
        if found is None:
            raise NotFound(f"There is no outbox row {number}.")
        return render("row.html", **found)

    @app.get("/suppressions")
    def suppressions() -> str:
        """The suppression list, newest first."""
        return render("suppressions.html", entries=page.read_suppressions())

    @app.errorhandler(HTTPException)
    def refused(error: HTTPException) -> tuple[str, int]:
        """Answer every 4xx (and a 500, already logged by Flask) with a page."""
        return render("error.html", error=error), error.code or 500

    @app.after_request
    def secure(response: Response) -> Response:
        """Put the security headers on every answer, errors and redirects too."""
        response.headers.update(SECURITY_HEADERS)
        return response

    return app


def serve_status_page(
    engine: Engine, host: str, port: int, environ: Mapping[str, str] = os.environ
) -> None:
    """Serve the page on ``host:port`` until SIGTERM or SIGINT."""
    try:
        token = admin_token(environ)  # read once, at start-up
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    server = make_server(
        host,
        port,
        create_status_app(engine, token),
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
        "status page on http://%s:%d/ (%s)", host, server.server_port,
        "actions on: OUTBOX_ADMIN_TOKEN is set" if token else "read-only",
        extra={"action": "status_listen"},
    )  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server_close()
    logger.info("status page stopped", extra={"action": "stop"})
