"""The signup service: a Flask app that writes a user and its welcome email at once.

Serve it with ``gunicorn 'signup_service:create_app()'`` in production, or
``flask --app signup_service run`` in development.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping

from flask import Flask

from outbox_contract.logs import configure_logging
from signup_service import cli, database, limits, metrics, openapi, security
from signup_service.config import signup_settings
from signup_service.confirm import bp as confirm_bp
from signup_service.views import bp

logger = logging.getLogger(__name__)


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the signup app from ``environ`` (the process environment by default)."""
    # No static folder: every route is an endpoint of ours (see openapi.py).
    app = Flask(__name__, static_folder=None)
    app.config.update(signup_settings(os.environ if environ is None else environ))
    configure_logging()
    if app.config["SECRET_KEY"] is None:
        # Only the SQLite demo gets here (config refuses it on PostgreSQL).
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
        logger.warning(
            "SECRET_KEY is not set: confirmation links will stop working when"
            " this process restarts (`make run` sets one)",
            extra={"action": "ephemeral_secret_key"},
        )
    database.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(confirm_bp)
    app.register_blueprint(openapi.bp)
    security.init_app(app)
    limits.init_app(app)
    cli.init_app(app)
    metrics.init_app(app)
    return app
