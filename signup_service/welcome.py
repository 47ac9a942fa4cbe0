"""The welcome email: rendered from templates, queued as a whole message.

It takes the path every message takes: ``enqueue_email`` with a
:class:`~outbox_contract.MailMessage`, the same call ``flask_outbox`` makes
for a Flask-Mail ``Message``. The service builds the ``MailMessage`` itself
rather than a Flask-Mail one: it never sends mail, and Flask-Mail's
``Message()`` would look up the host's name for a Message-ID we replace.
"""

from __future__ import annotations

from typing import Protocol

from flask import current_app, render_template

from outbox_contract import MailMessage, enqueue_email
from signup_service.database import db
from signup_service.tokens import make_confirm_token


class Recipient(Protocol):
    """What the welcome mail needs of its user: the address and the name."""

    email: str
    name: str | None


def confirm_url(user_id: int, email: str) -> str:
    """Return the signed ``<PUBLIC_BASE_URL>/confirm/<token>`` link for a user."""
    token = make_confirm_token(user_id, email)
    return f"{current_app.config['PUBLIC_BASE_URL']}/confirm/{token}"


def welcome_key(user_id: int) -> str:
    """Return the dedupe key of ``user_id``'s welcome mail, how we find it again."""
    return f"welcome:{user_id}"


def enqueue_welcome_email(user_id: int, user: Recipient) -> int:
    """Queue the welcome email for the user ``user_id`` (already inserted).

    It joins the request's transaction; the caller commits both rows at once.
    Returns the outbox row's id.
    """
    link = confirm_url(user_id, user.email)
    message = MailMessage.build(
        subject=current_app.config["WELCOME_SUBJECT"],
        to=user.email,
        text=render_template("email/welcome.txt", user=user, confirm_url=link),
        html=render_template("email/welcome.html", user=user, confirm_url=link),
    )
    row = enqueue_email(
        db.session,
        message,
        message_id_domain=current_app.config["MESSAGE_ID_DOMAIN"],
        # The signup's own link from a user to the welcome mail (the outbox's
        # tables have no foreign key to ours). It also stops a second welcome
        # while the first is unsent.
        dedupe_key=welcome_key(user_id),
    )
    return row.id
