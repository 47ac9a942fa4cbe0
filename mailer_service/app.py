"""The mailer's Flask app: its database and Flask-Mail, bound by ``create_app``.

Only the mailer process builds it. The operator tools (``outbox``, the status
page) never import this module, so they never load Flask-Mail.
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
