"""HTTP endpoints: ``POST /signup``, the health checks and the JSON errors.

The transaction boundary of the outbox pattern is in :func:`signup`: the user
row and its welcome email are committed together, or neither is.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from outbox_contract import User
from signup_service import idempotency, metrics
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

# Built once: SQLAlchemy compiles it once, and each signup only binds values.
INSERT_USER = insert(User.__table__).returning(User.__table__.c.id)


def error(status: int, message: str) -> tuple[Response, int]:
    """Return the JSON error body every failure uses."""
    return jsonify(error=message), status


@bp.post("/signup")
def signup() -> Response | tuple[Response, int]:
    """Create a user and queue the welcome email in one transaction.

    With an ``Idempotency-Key`` the key and its answer join that transaction,
    and a repeat of the request gets the stored answer instead.
    """
    try:
        key = idempotency.request_key(request)
        fields = read_fields(request)
    except (idempotency.BadKey, UnreadableBody) as err:
        return error(400, str(err))
    request_hash = idempotency.fingerprint(fields)
    try:
        if key and (stored := idempotency.stored_answer(db.session, key, request_hash)):
            return stored.response()
        form = parse_signup(fields)
    except (idempotency.KeyReused, InvalidSignup) as err:
        return error(422, str(err))

    try:
        # A Core INSERT, not the ORM's unit of work: a signup is two INSERTs
        # and a commit, and the unit of work's bookkeeping cost more than both.
        user_id = (
            db.session.connection()
            .execute(INSERT_USER, {"email": form.email, "name": form.name})
            .scalar_one()
        )  # a taken email fails here
        enqueue_welcome_email(user_id, form)
        response = jsonify(id=user_id, email=form.email, name=form.name)
        if key:
            answer = idempotency.StoredAnswer(201, response.get_data(as_text=True))
            idempotency.remember(db.session, key, request_hash, user_id, answer)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        answer = _conflict(form.email, key, request_hash)
        if answer is None:
            raise  # some other constraint failed: a server fault, not the client's
        return answer
    logger.info("signup", extra={"action": "signup", "user_id": user_id})
    metrics.SIGNUPS.inc()
    return response, 201


def _conflict(
    email: str, key: str | None, request_hash: str
) -> Response | tuple[Response, int] | None:
    """Answer a failed insert: a concurrent twin with our key, or a taken email."""
    if key:
        # The other request with this key committed first: answer as it did.
        try:
            if stored := idempotency.stored_answer(db.session, key, request_hash):
                return stored.response()
        except idempotency.KeyReused as err:
            return error(422, str(err))
    if _email_taken(email):
        return error(409, "email is already registered")
    return None


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
    response, status = error(err.code or 500, err.description or err.name)
    # Keep the headers the error carries, such as Allow on a 405.
    for name, value in err.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status
