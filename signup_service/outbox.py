"""Build the outbox rows the signup service writes; the mailer delivers them."""

from __future__ import annotations

import uuid

from flask import current_app, render_template

from signup_service.models import Outbox, User


def new_message_id(domain: str) -> str:
    """Return a globally unique Message-ID, fixed for every delivery attempt."""
    return f"<{uuid.uuid4().hex}@{domain}>"


def welcome_email(user: User) -> Outbox:
    """Render the welcome email for ``user`` as a pending outbox row."""
    return Outbox(
        recipient=user.email,
        subject=current_app.config["WELCOME_SUBJECT"],
        body_text=render_template("email/welcome.txt", user=user),
        body_html=render_template("email/welcome.html", user=user),
        message_id=new_message_id(current_app.config["MESSAGE_ID_DOMAIN"]),
        user_id=user.id,
    )
