"""``/confirm/<token>``: the double opt-in link of the welcome mail.

GET only shows a page with a button; the button POSTs to the same URL, and
only that POST sets ``users.confirmed_at``. Mail scanners and link previews
open every link they see, so a GET must never change anything.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, render_template, request
from sqlalchemy import func, update

from outbox_contract import User
from signup_service.database import db
from signup_service.tokens import ExpiredToken, InvalidToken, read_confirm_token

logger = logging.getLogger(__name__)

bp = Blueprint("confirm", __name__)


class UnknownUser(Exception):
    """The token is genuine, but its user is gone (answered with 404)."""


def wants_json() -> bool:
    """Tell whether the client asked for JSON rather than a page."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def answer(template: str, status: int, user: User | None, **page: str) -> Response:
    """Render ``template``, or the user's state as JSON when asked for JSON."""
    if wants_json():
        if user is None:
            response = jsonify(error=page["message"])
        else:
            response = jsonify(
                id=user.id, email=user.email, confirmed_at=_iso(user.confirmed_at)
            )
    else:
        response = Response(render_template(template, user=user, **page))
    response.status_code = status
    # The URL carries the token: keep it out of caches along the way.
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("Accept")
    return response


def _iso(moment: datetime | None) -> str | None:
    """Return ``moment`` in ISO 8601, as UTC when the database kept no zone."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _user_for(token: str) -> User:
    """Return the user ``token`` confirms; raise on a bad or stale token."""
    claim = read_confirm_token(token)
    user = db.session.get(User, claim.user_id)
    # A link mailed to an address the user has since changed confirms nothing:
    # answered like a deleted user, as before tokens stopped carrying addresses.
    if user is None or not claim.is_for(user.email):
        raise UnknownUser("this account no longer exists")
    return user


@bp.get("/confirm/<path:token>")
def show(token: str) -> Response:
    """Show the confirmation button; change nothing."""
    user = _user_for(token)
    return answer("confirm/confirm.html", 200, user)


@bp.post("/confirm/<path:token>")
def confirm(token: str) -> Response:
    """Set ``confirmed_at`` once; confirming again changes nothing."""
    user = _user_for(token)
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, User.confirmed_at.is_(None))
        .values(confirmed_at=func.now())
    )
    db.session.commit()
    db.session.refresh(user)
    if result.rowcount:
        logger.info("confirmed", extra={"action": "confirm", "user_id": user.id})
    return answer("confirm/confirmed.html", 200, user)


@bp.errorhandler(InvalidToken)
def invalid_token(err: InvalidToken) -> Response:
    """A tampered or foreign token: 400, with a page a human can read."""
    return answer("confirm/error.html", 400, None, message=str(err))


@bp.errorhandler(ExpiredToken)
def expired_token(err: ExpiredToken) -> Response:
    """An authentic but old token: 410 Gone."""
    return answer("confirm/error.html", 410, None, message=str(err))


@bp.errorhandler(UnknownUser)
def unknown_user(err: UnknownUser) -> Response:
    """The token is fine but its user was deleted: 404."""
    return answer("confirm/error.html", 404, None, message=str(err))
