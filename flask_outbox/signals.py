"""The ``message_queued`` signal, and what it carries about each queued message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import blinker
from flask_mail import Message

signals = blinker.Namespace()
message_queued: blinker.NamedSignal = signals.signal(
    "message-queued",
    doc="""Sent by ``Outbox.send`` once a message is in the session's transaction.

The sender is the app; ``queued`` is a :class:`QueuedMessage`. The row is not
committed yet: a rollback still takes it back.
""",
)


@dataclass(frozen=True)
class QueuedMessage:
    """One message ``Outbox.send`` queued: its row id and what it was asked."""

    id: int  # outbox.id; with a dedupe_key already queued, that earlier row's id
    message: Message
    priority: int = 0
    send_at: datetime | None = None
    dedupe_key: str | None = None
