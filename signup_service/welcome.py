"""The welcome email: rendered from templates and queued through the contract."""

from __future__ import annotations

from typing import Protocol

from flask import current_app, render_template
from sqlalchemy.orm import Session

from outbox_contract import Outbox, enqueue_email
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


def enqueue_welcome_email(session: Session, user_id: int, user: Recipient) -> Outbox:
    """Queue the welcome email for the user ``user_id`` (already inserted)."""
    link = confirm_url(user_id, user.email)
    return enqueue_email(
        session,
        to=user.email,
        subject=current_app.config["WELCOME_SUBJECT"],
        text=render_template("email/welcome.txt", user=user, confirm_url=link),
        html=render_template("email/welcome.html", user=user, confirm_url=link),
        # The signup's own link from a user to the welcome mail: the outbox's
        # tables have no foreign key to ours. It also stops a second welcome
        # while the first is unsent.
        dedupe_key=welcome_key(user_id),
        message_id_domain=current_app.config["MESSAGE_ID_DOMAIN"],
    )
