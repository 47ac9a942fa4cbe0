"""The mailer service: a separate process that relays the outbox to SMTP.

Run it with ``python -m mailer_service`` (or the ``mailer-service`` script).
The delivery loop is in :mod:`mailer_service.relay`, its SQL in
``queries/``, and the retry policy in :mod:`mailer_service.policy`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy

from mailer_service.config import mailer_settings
from outbox_contract.database import prepare_engine

# The mailer's own extension objects. It maps no models: its SQL is in queries/.
db = SQLAlchemy()
mail = Mail()


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the Flask app that carries the mailer's database and Flask-Mail."""
    app = Flask(__name__)
    app.config.update(mailer_settings(os.environ if environ is None else environ))
    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine)
    mail.init_app(app)
    return app
