"""The signup service: a Flask app that writes a user and its welcome email at once.

Serve it with ``gunicorn 'signup_service:create_app()'`` in production, or
``flask --app signup_service run`` in development.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask

from signup_service.config import signup_settings
from signup_service.models import db
from signup_service.views import bp

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the signup app from ``environ`` (the process environment by default)."""
    app = Flask(__name__)
    app.config.update(signup_settings(os.environ if environ is None else environ))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    db.init_app(app)
    app.register_blueprint(bp)
    return app
