"""The signup's mail: Flask-Mail builds messages, flask_outbox queues them.

The service never talks SMTP. Flask-Mail is here only to build ``Message``
objects with the configured default sender (and is suppressed, so nothing
could send by accident); :data:`outbox` queues each message in the request's
own transaction, the same path any app's mail takes.
"""

from __future__ import annotations

from flask import Flask
from flask_mail import Mail

from flask_outbox import Outbox
from signup_service.database import db

mail = Mail()
outbox = Outbox()


def init_app(app: Flask) -> None:
    """Bind Flask-Mail (suppressed) and the outbox to ``app``."""
    app.config["MAIL_SUPPRESS_SEND"] = True
    app.config.setdefault("OUTBOX_MESSAGE_ID_DOMAIN", app.config["MESSAGE_ID_DOMAIN"])
    mail.init_app(app)
    outbox.init_app(app, db)
