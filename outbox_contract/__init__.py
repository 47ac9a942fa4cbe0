"""The contract between the two services: the outbox table and how to fill it.

Both services, the migrations and the benchmark stand on this package; it
imports neither service, and no Flask. It holds:

- :mod:`outbox_contract.schema`: the outbox's tables (``OutboxBase``) and the
  signup service's (``AppBase``), declared once (the migrations are checked
  against them);
- :mod:`outbox_contract.message`: a whole message, checked, and its stored
  JSON form;
- :mod:`outbox_contract.enqueue`: :func:`enqueue_email`, the one way for any
  producer to queue a mail inside its own transaction;
- :mod:`outbox_contract.cancel`: :func:`cancel_email`, stopping queued mail
  inside the caller's transaction;
- :mod:`outbox_contract.migrate`: the outbox's own migration history
  (``outbox migrate``);
- :mod:`outbox_contract.settings`: ``DATABASE_URL``, ``MAIL_*`` and the
  environment parsers both services use;
- :mod:`outbox_contract.database`: engine options and the SQLite pragmas;
- :mod:`outbox_contract.logs`: the log format of every process (``LOG_FORMAT``);
- :mod:`outbox_contract.metrics`: the queue gauges both services export.
"""

from __future__ import annotations

from outbox_contract.cancel import Cancelled, cancel_email
from outbox_contract.enqueue import enqueue_email, new_message_id
from outbox_contract.message import (
    Address,
    Attachment,
    MailMessage,
    MessageError,
    MessageTooLarge,
)
from outbox_contract.schema import (
    CANCELLED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    STATUSES,
    SUPPRESSED,
    AppBase,
    IdempotencyKey,
    Outbox,
    OutboxAttachment,
    OutboxBase,
    User,
)
from outbox_contract.settings import ConfigError

__all__ = [
    "CANCELLED",
    "FAILED",
    "PENDING",
    "SENDING",
    "SENT",
    "STATUSES",
    "SUPPRESSED",
    "Address",
    "AppBase",
    "Attachment",
    "Cancelled",
    "ConfigError",
    "IdempotencyKey",
    "MailMessage",
    "MessageError",
    "MessageTooLarge",
    "Outbox",
    "OutboxAttachment",
    "OutboxBase",
    "User",
    "cancel_email",
    "enqueue_email",
    "new_message_id",
]
