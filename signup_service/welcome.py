"""The welcome email: rendered from templates and queued through the contract."""

from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy.orm import Session

from outbox_contract import Outbox, User, enqueue_email
from signup_service.tokens import make_confirm_token


def confirm_url(user: User) -> str:
    """Return the signed ``<PUBLIC_BASE_URL>/confirm/<token>`` link for ``user``."""
    token = make_confirm_token(user.id, user.email)
    return f"{current_app.config['PUBLIC_BASE_URL']}/confirm/{token}"


def enqueue_welcome_email(session: Session, user: User) -> Outbox:
    """Queue the welcome email for ``user`` (already flushed) in ``session``."""
    link = confirm_url(user)
    return enqueue_email(
        session,
        to=user.email,
        subject=current_app.config["WELCOME_SUBJECT"],
        text=render_template("email/welcome.txt", user=user, confirm_url=link),
        html=render_template("email/welcome.html", user=user, confirm_url=link),
        user_id=user.id,
        message_id_domain=current_app.config["MESSAGE_ID_DOMAIN"],
    )
