"""``Idempotency-Key`` on ``POST /signup``, as Stripe's API has it.

The first request with a key creates the user and stores its answer with the
key, in the same transaction. For 24 hours, the same key with the same body
gets that answer again (status and body) and writes nothing; the same key
with another body gets 422. Requests that fail (4xx) store nothing, so a
client may fix its request and retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Request, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from outbox_contract import IdempotencyKey

HEADER = "Idempotency-Key"
KEY_LIFETIME = timedelta(hours=24)
# Visible ASCII, 1 to 255 characters (Stripe's limit): a UUID fits easily.
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class BadKey(Exception):
    """The header is present but not a usable key (answered with 400)."""


class KeyReused(Exception):
    """The key was first used with another body (answered with 422)."""


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer given to a key."""

    status: int
    body: str

    def response(self) -> Response:
        """Return the answer again, marked as a replay as Stripe marks it."""
        response = Response(self.body, self.status, mimetype="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        return response


def request_key(request: Request) -> str | None:
    """Return the request's ``Idempotency-Key``, or None when it sent none."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not _VALID_KEY.fullmatch(value):
        raise BadKey(
            f"{HEADER} must be 1 to 255 visible ASCII characters, such as a UUID"
        )
    return value


def fingerprint(fields: dict[str, Any]) -> str:
    """Return a hash of the request's fields, the same however they were encoded."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _cutoff() -> datetime:
    """Return the creation time before which a key has expired."""
    return datetime.now(UTC) - KEY_LIFETIME


def stored_answer(session: Session, key: str, request_hash: str) -> StoredAnswer | None:
    """Return the live answer stored for ``key``; raise if its body differed."""
    row = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.key == key, IdempotencyKey.created_at >= _cutoff()
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise KeyReused(f"{HEADER} was already used with a different request body")
    return StoredAnswer(status=row.response_status, body=row.response_body)


def remember(
    session: Session, key: str, request_hash: str, user_id: int, answer: StoredAnswer
) -> None:
    """Store ``answer`` under ``key`` in ``session``'s transaction."""
    # An expired key may still be there until the next purge; it is free again.
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.key == key, IdempotencyKey.created_at < _cutoff()
        )
    )
    session.add(
        IdempotencyKey(
            key=key,
            request_hash=request_hash,
            user_id=user_id,
            response_status=answer.status,
            response_body=answer.body,
        )
    )


def purge_expired(session: Session) -> int:
    """Delete every key older than 24 hours; return how many went."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < _cutoff())
    )
    return result.rowcount
