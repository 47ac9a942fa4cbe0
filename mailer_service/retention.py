"""Retention: purge or redact old sent rows, a batch per short transaction.

A sent row is only a record once it is delivered. Redaction blanks its body
and recipient and keeps its id, status, timestamps and Message-ID, plus a
keyed hash (HMAC-SHA256 with ``MAILER_REDACTION_KEY``) of the address, so
"did we mail this address?" still has an answer. Only ``sent`` rows are ever
redacted; ``outbox purge`` deletes them outright.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Mapping

from sqlalchemy import Connection, Engine

from mailer_service.sql import load_queries
from outbox_contract.settings import ConfigError, raw

logger = logging.getLogger(__name__)

MIN_KEY_LENGTH = 32  # characters of MAILER_REDACTION_KEY
DEFAULT_BATCH_SIZE = 1000  # rows deleted or redacted per transaction


def redaction_key(environ: Mapping[str, str] = os.environ) -> bytes:
    """Return ``MAILER_REDACTION_KEY``, which redaction and look-ups need."""
    key = raw(environ, "MAILER_REDACTION_KEY")
    if key is None or len(key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"MAILER_REDACTION_KEY must be set to at least {MIN_KEY_LENGTH}"
            " characters to redact or look up recipients"
        )
    return key.encode()


def recipient_hash(key: bytes, address: str) -> str:
    """Return the keyed hash of ``address``, ignoring case."""
    return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()


def in_batches(
    engine: Engine, batch: Callable[[Connection], int], batch_size: int
) -> tuple[int, int]:
    """Run ``batch`` a transaction at a time until it does fewer than ``batch_size``.

    Each run is its own short transaction, so locks are brief and a mailer is
    never held up for long. Returns (rows done, batches run).
    """
    done = batches = 0
    while True:
        with engine.begin() as connection:
            count = batch(connection)
        done += count
        batches += 1
        if count < batch_size:
            return done, batches


def purge_sent(
    engine: Engine, older_than_seconds: float, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[int, int]:
    """Delete sent rows older than the cut-off in batches; return (rows, batches)."""
    queries = load_queries(f"retention_{engine.dialect.name}")
    params = {"seconds": float(older_than_seconds), "batch_size": batch_size}

    def purge_batch(connection: Connection) -> int:
        """Delete one batch of old sent rows (their history goes with them)."""
        return connection.execute(queries["purge_sent_batch"], params).rowcount

    deleted, batches = in_batches(engine, purge_batch, batch_size)
    logger.info("purged sent rows", extra={"action": "purge", "count": deleted})
    return deleted, batches


def redact_sent(
    engine: Engine,
    older_than_seconds: float,
    key: bytes,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[int, int]:
    """Redact sent rows older than the cut-off in batches; return (rows, batches).

    Then drop suppression entries older than the cut-off: they hold addresses.
    """
    queries = load_queries(f"retention_{engine.dialect.name}")
    params = {"seconds": float(older_than_seconds), "batch_size": batch_size}

    def redact_batch(connection: Connection) -> int:
        """Blank one batch of old sent rows, their attachments and history."""
        rows = connection.execute(queries["redactable_batch"], params).all()
        if rows:
            hashed = [
                {"id": row.id, "recipient_hash": recipient_hash(key, row[1])}
                for row in rows
            ]
            connection.execute(queries["redact_row"], hashed)
            for name in ("redact_attachments", "redact_history"):
                connection.execute(queries[name], [{"id": row.id} for row in rows])
        return len(rows)

    redacted, batches = in_batches(engine, redact_batch, batch_size)
    with engine.begin() as connection:
        connection.execute(
            queries["redact_suppressions"], {"seconds": int(older_than_seconds)}
        )
    logger.info(
        "redacted %d sent rows", redacted, extra={"action": "redact", "count": redacted}
    )
    return redacted, batches
