"""The ``Outbox`` extension: queue Flask-Mail messages in the app's own transaction.

Per-app state lives in ``app.extensions["outbox"]`` (an :class:`OutboxState`),
never on the extension object, so one ``Outbox`` can serve several apps.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from flask_mail import Message, email_dispatched
from flask_sqlalchemy import SQLAlchemy

from flask_outbox.convert import parse_sender, to_mail_message
from flask_outbox.signals import QueuedMessage, message_queued
from outbox_contract.enqueue import enqueue_email
from outbox_contract.message import MessageError, max_message_bytes
from outbox_contract.settings import ConfigError, parse_bool, parse_int

logger = logging.getLogger(__name__)

EXTENSION = "outbox"  # the key in app.extensions
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$")


@dataclass(frozen=True)
class OutboxState:
    """What one app's outbox needs: its extension, its db and its settings."""

    outbox: Outbox
    db: SQLAlchemy
    max_message_bytes: int  # bytes; OUTBOX_MAX_MESSAGE_BYTES
    message_id_domain: str | None  # OUTBOX_MESSAGE_ID_DOMAIN
    capture_mail: bool  # OUTBOX_CAPTURE_MAIL


class Outbox:
    """Queue ``flask_mail.Message`` objects in the outbox table instead of sending."""

    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None) -> None:
        """Bind to ``app`` now when given, else later with :meth:`init_app`."""
        if app is not None:
            self.init_app(app, db)

    def init_app(self, app: Flask, db: SQLAlchemy | None = None) -> None:
        """Read the ``OUTBOX_*`` config and register in ``app.extensions``.

        ``db`` is the app's Flask-SQLAlchemy object (default: the one already
        initialised on the app). With ``OUTBOX_CAPTURE_MAIL`` on, Flask-Mail
        must be initialised first: its sends are queued from then on.
        """
        db = db if db is not None else app.extensions.get("sqlalchemy")
        if db is None:
            raise RuntimeError(
                "Outbox needs the app's Flask-SQLAlchemy object: pass it as"
                " Outbox(app, db), or call db.init_app(app) first"
            )
        state = OutboxState(
            outbox=self,
            db=db,
            max_message_bytes=_max_message_bytes(app.config),
            message_id_domain=_message_id_domain(app.config),
            capture_mail=_capture_mail(app.config),
        )
        if state.capture_mail:
            _capture(app)
        app.extensions[EXTENSION] = state

    def send(
        self,
        message: Message,
        *,
        priority: int = 0,
        send_at: datetime | None = None,
        dedupe_key: str | None = None,
        bypass_suppression: bool = False,
    ) -> int:
        """Queue ``message`` in ``db.session``'s transaction and return its row id.

        Nothing is committed: the caller's commit sends the mail, its rollback
        drops it. Raises MessageError (MessageTooLarge for size) and writes
        nothing for a message the outbox could not send as given.
        ``bypass_suppression`` sends even to suppressed addresses (to re-verify
        one, say).
        """
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        state = _state(app)
        row = enqueue_email(
            state.db.session,
            to_mail_message(message),
            message_id_domain=state.message_id_domain or _default_sender_domain(app),
            priority=priority,
            send_at=send_at,
            dedupe_key=dedupe_key,
            max_bytes=state.max_message_bytes,
            bypass_suppression=bypass_suppression,
        )
        logger.info("queued", extra={"action": "enqueue", "outbox_id": row.id})
        message_queued.send(
            app,
            queued=QueuedMessage(row.id, message, priority, send_at, dedupe_key),
        )
        return row.id

    @contextmanager
    def record_messages(self) -> Iterator[list[QueuedMessage]]:
        """Collect what this outbox queues inside the block, as Flask-Mail's helper."""
        recorded: list[QueuedMessage] = []

        def record(app: Flask, *, queued: QueuedMessage, **_: Any) -> None:
            """Keep one message, if this outbox (not another) queued it."""
            if _state(app).outbox is self:
                recorded.append(queued)

        with message_queued.connected_to(record):
            yield recorded


def _state(app: Flask) -> OutboxState:
    """Return ``app``'s outbox state, or say how to set it up."""
    try:
        return app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError(
            "Outbox is not initialised on this app: call Outbox(app, db)"
            " or outbox.init_app(app, db) in the app factory"
        ) from None


def _capture(app: Flask) -> None:
    """Make ``app``'s Flask-Mail queue every message instead of sending it."""
    mail = app.extensions.get("mail")
    if mail is None:
        raise RuntimeError(
            "OUTBOX_CAPTURE_MAIL needs Flask-Mail on the app first:"
            " call Mail(app) (or mail.init_app(app)) before Outbox(app, db)"
        )
    # Flask-Mail still builds and checks the message and fires email_dispatched,
    # but never opens an SMTP connection: the mailer sends after the commit.
    mail.suppress = True
    email_dispatched.connect(_queue_dispatched, sender=app)


def _queue_dispatched(app: Flask, *, message: Message, **_: Any) -> None:
    """Queue a message Flask-Mail dispatched, if ``app`` captures its mail."""
    state = app.extensions.get(EXTENSION)
    # An app initialised again without the switch keeps the receiver: skip it.
    if state is not None and state.capture_mail:
        state.outbox.send(message)


def _max_message_bytes(config: dict[str, Any]) -> int:
    """Read OUTBOX_MAX_MESSAGE_BYTES from the app, else from the environment."""
    value = config.get("OUTBOX_MAX_MESSAGE_BYTES")
    if value is None:
        return max_message_bytes()
    if isinstance(value, bool):
        raise ConfigError("OUTBOX_MAX_MESSAGE_BYTES must be an integer")
    return parse_int(
        {"OUTBOX_MAX_MESSAGE_BYTES": str(value)},
        "OUTBOX_MAX_MESSAGE_BYTES",
        0,
        minimum=1,
    )


def _message_id_domain(config: dict[str, Any]) -> str | None:
    """Read OUTBOX_MESSAGE_ID_DOMAIN; it goes into every Message-ID, so check it."""
    value = config.get("OUTBOX_MESSAGE_ID_DOMAIN")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DOMAIN.match(value.lower()):
        raise ConfigError(f"OUTBOX_MESSAGE_ID_DOMAIN is not a domain: {value!r}")
    return value.lower()


def _capture_mail(config: dict[str, Any]) -> bool:
    """Read OUTBOX_CAPTURE_MAIL: a bool, or true/false/1/0 from the environment."""
    value = config.get("OUTBOX_CAPTURE_MAIL", False)
    if isinstance(value, bool):
        return value
    return parse_bool({"OUTBOX_CAPTURE_MAIL": str(value)}, "OUTBOX_CAPTURE_MAIL", False)


def _default_sender_domain(app: Flask) -> str | None:
    """Return the domain of the app's Flask-Mail default sender, if it has one."""
    mail = app.extensions.get("mail")
    try:
        sender = parse_sender(getattr(mail, "default_sender", None))
    except MessageError:
        raise ConfigError(
            f"MAIL_DEFAULT_SENDER is not an email address: {mail.default_sender!r}"
        ) from None
    return None if sender is None else sender.address.rpartition("@")[2].lower()
