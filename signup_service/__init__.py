"""The signup service: a Flask app that writes a user and its welcome email at once.

Serve it with ``gunicorn 'signup_service:create_app()'`` in production, or
``flask --app signup_service run`` in development.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask

from outbox_contract.logs import configure_logging
from signup_service import database, metrics
from signup_service.config import signup_settings
from signup_service.views import bp


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the signup app from ``environ`` (the process environment by default)."""
    app = Flask(__name__)
    app.config.update(signup_settings(os.environ if environ is None else environ))
    configure_logging()
    database.init_app(app)
    app.register_blueprint(bp)
    metrics.init_app(app)
    return app
