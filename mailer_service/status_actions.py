"""The status page's actions: log in and out, retry, cancel, unsuppress.

Registered only when ``OUTBOX_ADMIN_TOKEN`` is set: without it these URLs do
not exist (404) and the page shows no forms. Every POST is checked in order:
the Origin (or Referer) host, the login cookie, the form's CSRF token
(:mod:`mailer_service.status_auth`), then the row's state. A refused request
changes nothing and gets a 4xx page. The writes are the ones ``outbox retry``,
``outbox cancel`` and ``outbox unsuppress`` make; each is logged with its row
id, never an address. Success answers 303, back to the page, with a notice.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from flask import Blueprint, Flask, Response, abort, current_app, g, redirect, request
from sqlalchemy import Engine, TextClause
from sqlalchemy.orm import Session

from mailer_service.database import operator_queries
from mailer_service.status_auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Gate,
    from_this_site,
    new_nonce,
)
from outbox_contract.cancel import cancel_email

logger = logging.getLogger(__name__)

EXTENSION = "outbox_status_actions"  # the key in app.extensions
MAX_ROW_ID = 2**63 - 1  # outbox.id is a bigint: a larger number is no row
MAX_ADDRESS_LENGTH = 254  # characters, as the signup service accepts
# Where a login may send the operator back to: this site's pages, nowhere else.
_BACK = re.compile(r"/(?:rows/[1-9][0-9]{0,18}|suppressions)?")
# The notice a page shows after a redirect; ``?done=`` picks one, never free text.
DONE = {
    "retried": "Retried: the row is pending again, due now.",
    "cancelled": "Cancelled: the row will never be sent.",
    "unsuppressed": "Unsuppressed: the address is off the suppression list.",
    "logged_in": "Logged in: the actions are available.",
    "logged_out": "Logged out.",
}

actions = Blueprint("actions", __name__)


@dataclass(frozen=True)
class Admin:
    """What the actions need: the database, the operator SQL, and the gate."""

    engine: Engine
    queries: dict[str, TextClause]
    gate: Gate


def init_app(app: Flask, engine: Engine, gate: Gate) -> None:
    """Turn the actions on for ``app``, guarded by ``gate``."""
    queries = operator_queries(engine.dialect.name)
    app.extensions[EXTENSION] = Admin(engine, queries, gate)
    app.register_blueprint(actions)


def parse_row_id(value: str) -> int:
    """Return ``value`` as an outbox id, or answer 400."""
    if value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        if 1 <= number <= MAX_ROW_ID:
            return number
    abort(400, f"{value[:40]!r} is not a row id: a row id is a positive integer.")


def _admin() -> Admin:
    """Return the app's actions state."""
    return current_app.extensions[EXTENSION]


def _refuse(code: int, reason: str, why: str) -> NoReturn:
    """Log a refused POST (its reason, not its contents) and answer ``code``."""
    logger.warning(
        "status page refused a POST: %s", reason, extra={"action": "status_refused"}
    )
    abort(code, why)


def _check_origin() -> None:
    """Refuse a POST whose Origin (or Referer) names another site."""
    headers = request.headers
    if not from_this_site(headers.get("Origin"), headers.get("Referer"), request.host):
        _refuse(403, "origin", "This form was posted from another site.")


def _check_csrf(binding: str) -> None:
    """Refuse a POST without the CSRF token of the page that ``binding`` names."""
    if not _admin().gate.csrf_valid(binding, request.form.get("csrf")):
        _refuse(
            403,
            "csrf",
            "The form's CSRF token is missing or wrong: reload the page and retry.",
        )


def _require_login() -> None:
    """Refuse a POST unless it comes from a logged-in page of this site."""
    _check_origin()
    session = request.cookies.get(SESSION_COOKIE)
    if session is None or not _admin().gate.session_valid(session, time.time()):
        _refuse(403, "login", "Log in with OUTBOX_ADMIN_TOKEN first.")
    _check_csrf(f"session:{session}")


def _back(path: str, done: str) -> Response:
    """Redirect (303) to ``path`` of this site with the notice ``done``."""
    return redirect(f"{request.script_root}{path}?done={done}", 303)


def _cookie(response: Response, name: str, value: str | None) -> None:
    """Set (or, for None, delete) a cookie no script and no other site sees."""
    flags: dict[str, Any] = {
        "path": "/",
        "secure": request.is_secure,
        "httponly": True,
        "samesite": "Strict",
    }
    if value is None:
        response.delete_cookie(name, **flags)
    else:
        response.set_cookie(name, value, max_age=SESSION_SECONDS, **flags)


@actions.app_context_processor
def admin_forms() -> dict[str, str]:
    """Tell the templates which forms to show: "on" (actions) or "login"."""
    gate = _admin().gate
    session = request.cookies.get(SESSION_COOKIE)
    if gate.session_valid(session, time.time()):
        return {"admin": "on", "csrf": gate.csrf_token(f"session:{session}")}
    if "login_nonce" not in g:
        g.login_nonce = request.cookies.get(LOGIN_COOKIE) or new_nonce()
    return {"admin": "login", "csrf": gate.csrf_token(f"login:{g.login_nonce}")}


@actions.after_app_request
def keep_login_nonce(response: Response) -> Response:
    """Set the cookie the login form's CSRF token is bound to, when it is new."""
    nonce = g.get("login_nonce")
    if nonce is not None and request.cookies.get(LOGIN_COOKIE) != nonce:
        _cookie(response, LOGIN_COOKIE, nonce)
    return response


@actions.post("/login")
def login() -> Response:
    """Check the pasted admin token; on a match, set the session cookie."""
    _check_origin()
    nonce = request.cookies.get(LOGIN_COOKIE)
    if nonce is None:  # no login form was shown to this browser
        _refuse(403, "csrf", "Open the status page and log in from its form.")
    _check_csrf(f"login:{nonce}")
    if not _admin().gate.token_matches(request.form.get("token", "")):
        _refuse(403, "token", "That is not the admin token (OUTBOX_ADMIN_TOKEN).")
    back = request.form.get("next", "/")
    response = _back(back if _BACK.fullmatch(back) else "/", "logged_in")
    _cookie(response, SESSION_COOKIE, _admin().gate.new_session(time.time()))
    _cookie(response, LOGIN_COOKIE, None)
    logger.info("status page login", extra={"action": "status_login"})
    return response


@actions.post("/logout")
def logout() -> Response:
    """Forget the session cookie."""
    _require_login()
    response = _back("/", "logged_out")
    _cookie(response, SESSION_COOKIE, None)
    logger.info("status page logout", extra={"action": "status_logout"})
    return response


@actions.post("/rows/<row_id>/retry")
def retry(row_id: str) -> Response:
    """Put a failed row back to pending, due now, as ``outbox retry`` does."""
    _require_login()
    number, admin = parse_row_id(row_id), _admin()
    with admin.engine.begin() as connection:
        done = connection.execute(admin.queries["retry_failed"], {"ids": [number]})
        if done.first() is None:
            found = connection.execute(admin.queries["statuses"], {"ids": [number]})
            row = found.first()
            if row is None:
                abort(404, f"There is no outbox row {number}.")
            if row.status == "failed":  # another row with its dedupe key is queued
                abort(409, f"Row {number} was not retried: a row with its dedupe key"
                           " is queued already.")  # fmt: skip
            abort(409, f"Row {number} is {row.status}: only a failed row can be"
                       " retried.")  # fmt: skip
    logger.info(
        "retried a failed row from the status page",
        extra={"action": "status_retry", "outbox_id": number},
    )
    return _back(f"/rows/{number}", "retried")


@actions.post("/rows/<row_id>/cancel")
def cancel(row_id: str) -> Response:
    """Cancel a pending row for good, as ``outbox cancel`` does."""
    _require_login()
    number = parse_row_id(row_id)
    with Session(_admin().engine) as session:
        result = cancel_email(session, [number])
        session.commit()
    status = result.not_cancelled.get(number)
    if status == "missing":
        abort(404, f"There is no outbox row {number}.")
    if status is not None:
        abort(409, f"Row {number} is {status}: only a pending row can be cancelled.")
    logger.info(
        "cancelled a pending row from the status page",
        extra={"action": "status_cancel", "outbox_id": number},
    )
    return _back(f"/rows/{number}", "cancelled")


@actions.post("/suppressions/unsuppress")
def unsuppress() -> Response:
    """Take an address off the suppression list, as ``outbox unsuppress`` does."""
    _require_login()
    address = request.form.get("address", "").strip().lower()
    row = request.form.get("row")
    number = None if row is None else parse_row_id(row)
    if not address or len(address) > MAX_ADDRESS_LENGTH:
        abort(400, "Name the address to take off the suppression list.")
    admin = _admin()
    with admin.engine.begin() as connection:
        removed = connection.execute(admin.queries["unsuppress"], {"address": address})
        if removed.first() is None:
            abort(404, "That address is not on the suppression list.")
    # Never the address: the row it was unsuppressed from, if any, says enough.
    logger.info(
        "unsuppressed an address from the status page",
        extra={"action": "status_unsuppress", "outbox_id": number},
    )
    return _back(
        "/suppressions" if number is None else f"/rows/{number}", "unsuppressed"
    )
