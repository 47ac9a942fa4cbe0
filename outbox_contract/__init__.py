"""The contract between the two services: the outbox table and how to fill it.

Both services, the migrations and the benchmark stand on this package; it
imports neither service, and no Flask. It holds:

- :mod:`outbox_contract.schema`: the ``users``, ``idempotency_keys`` and
  ``outbox`` tables, declared once (the migrations are checked against it);
- :mod:`outbox_contract.enqueue`: :func:`enqueue_email`, the one way for any
  producer to queue a mail inside its own transaction;
- :mod:`outbox_contract.settings`: ``DATABASE_URL``, ``MAIL_*`` and the
  environment parsers both services use;
- :mod:`outbox_contract.database`: engine options and the SQLite pragmas;
- :mod:`outbox_contract.logs`: the log format of every process (``LOG_FORMAT``);
- :mod:`outbox_contract.metrics`: the queue gauges both services export.
"""

from __future__ import annotations

from outbox_contract.enqueue import enqueue_email, new_message_id
from outbox_contract.schema import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    STATUSES,
    Base,
    IdempotencyKey,
    Outbox,
    User,
)
from outbox_contract.settings import ConfigError

__all__ = [
    "FAILED",
    "PENDING",
    "SENDING",
    "SENT",
    "STATUSES",
    "Base",
    "ConfigError",
    "IdempotencyKey",
    "Outbox",
    "User",
    "enqueue_email",
    "new_message_id",
]
