"""Retention: redact old sent rows, keeping an audit record that can be asked.

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
from collections.abc import Mapping

from sqlalchemy import Engine, TextClause

from outbox_contract.settings import ConfigError, raw

logger = logging.getLogger(__name__)

MIN_KEY_LENGTH = 32  # characters of MAILER_REDACTION_KEY
DEFAULT_BATCH_SIZE = 1000  # rows redacted per transaction


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


def redact_sent(
    engine: Engine,
    queries: dict[str, TextClause],
    older_than_seconds: float,
    key: bytes,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[int, int]:
    """Redact sent rows older than the cut-off in batches; return (rows, batches)."""
    redacted = batches = 0
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                queries["redactable_batch"],
                {"seconds": older_than_seconds, "batch_size": batch_size},
            ).all()
            if rows:
                connection.execute(
                    queries["redact_row"],
                    [
                        {"id": row.id, "recipient_hash": recipient_hash(key, row[1])}
                        for row in rows
                    ],
                )
                for name in ("redact_attachments", "redact_history"):
                    connection.execute(queries[name], [{"id": row.id} for row in rows])
        redacted += len(rows)
        batches += 1
        if len(rows) < batch_size:
            break
    with engine.begin() as connection:
        connection.execute(
            queries["redact_suppressions"], {"seconds": int(older_than_seconds)}
        )
    logger.info(
        "redacted %d sent rows", redacted, extra={"action": "redact", "count": redacted}
    )
    return redacted, batches
