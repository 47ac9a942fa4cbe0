"""Flask-Outbox: queue Flask-Mail messages in your own database transaction.

    db, mail, outbox = SQLAlchemy(), Mail(), Outbox()
    db.init_app(app); mail.init_app(app); outbox.init_app(app, db)

    outbox.send(Message("Welcome", recipients=["ada@example.com"], body="Hi"))
    db.session.commit()  # the mail is queued with your rows, or not at all

The mailer (``python -m mailer_service``) sends what was committed. Set
``OUTBOX_CAPTURE_MAIL = True`` to turn existing ``mail.send(msg)`` calls into
queued mail. Tests use ``with outbox.record_messages() as queued: ...``.
"""

from __future__ import annotations

from flask_outbox.extension import Outbox, OutboxState
from flask_outbox.signals import QueuedMessage, message_queued
from outbox_contract.message import MessageError, MessageTooLarge

__all__ = [
    "MessageError",
    "MessageTooLarge",
    "Outbox",
    "OutboxState",
    "QueuedMessage",
    "message_queued",
]
