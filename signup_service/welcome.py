"""The welcome email: rendered from templates and queued through the contract."""

from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy.orm import Session

from outbox_contract import Outbox, User, enqueue_email


def enqueue_welcome_email(session: Session, user: User) -> Outbox:
    """Queue the welcome email for ``user`` in ``session``'s transaction."""
    return enqueue_email(
        session,
        to=user.email,
        subject=current_app.config["WELCOME_SUBJECT"],
        text=render_template("email/welcome.txt", user=user),
        html=render_template("email/welcome.html", user=user),
        user_id=user.id,
        message_id_domain=current_app.config["MESSAGE_ID_DOMAIN"],
    )
