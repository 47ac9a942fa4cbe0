"""HTTP endpoints: ``POST /signup`` and the health checks.

The transaction boundary of the outbox pattern is in :func:`signup`: the user
row and its welcome email are committed together, or neither is.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from outbox_contract import User
from signup_service import metrics
from signup_service.config import MAX_REQUEST_BYTES
from signup_service.database import db
from signup_service.validation import (
    InvalidSignup,
    UnreadableBody,
    parse_signup,
    read_fields,
)
from signup_service.welcome import enqueue_welcome_email

logger = logging.getLogger(__name__)

bp = Blueprint("signup", __name__)


def error(status: int, message: str) -> tuple[Response, int]:
    """Return the JSON error body every failure uses."""
    return jsonify(error=message), status


@bp.post("/signup")
def signup() -> tuple[Response, int]:
    """Create a user and queue the welcome email in one transaction."""
    try:
        form = parse_signup(read_fields(request))
    except UnreadableBody as err:
        return error(400, str(err))
    except InvalidSignup as err:
        return error(422, str(err))

    user = User(email=form.email, name=form.name)
    try:
        db.session.add(user)
        db.session.flush()  # assigns user.id; a taken email fails here
        user_id = user.id  # read now: commit expires the object
        enqueue_welcome_email(db.session, user)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if _email_taken(form.email):
            return error(409, "email is already registered")
        raise  # some other constraint failed: a server fault, not the client's
    logger.info("signup", extra={"action": "signup", "user_id": user_id})
    metrics.SIGNUPS.inc()
    return jsonify(id=user_id, email=form.email, name=form.name), 201


def _email_taken(email: str) -> bool:
    """Tell whether a user with ``email`` exists (after a failed insert)."""
    return db.session.scalar(select(User.id).where(User.email == email)) is not None


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response | tuple[Response, int]:
    """Readiness: the database answers ``SELECT 1``."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        logger.exception("database unreachable", extra={"action": "readyz"})
        return error(503, "database unreachable")
    return jsonify(status="ready")


@bp.app_errorhandler(OperationalError)
def database_unavailable(err: OperationalError) -> tuple[Response, int]:
    """Answer 503 when the database cannot be reached: retrying later may work."""
    logger.exception("database unavailable", extra={"action": "db_unavailable"})
    response, status = error(503, "database unavailable, try again later")
    response.headers["Retry-After"] = "5"
    return response, status


@bp.app_errorhandler(HTTPException)
def http_error(err: HTTPException) -> tuple[Response, int]:
    """Answer every HTTP error, 404 and 413 included, as JSON."""
    if isinstance(err, RequestEntityTooLarge):
        return error(413, f"request body must be at most {MAX_REQUEST_BYTES} bytes")
    return error(err.code or 500, err.description or err.name)
