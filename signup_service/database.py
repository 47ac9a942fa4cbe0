"""The signup service's database session, bound to the app in the factory."""

from __future__ import annotations

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from outbox_contract.database import prepare_engine
from outbox_contract.schema import AppBase

# The service's own extension object; the tables come from the contract.
db = SQLAlchemy(metadata=AppBase.metadata)


def init_app(app: Flask) -> None:
    """Bind ``db`` to ``app`` and prepare its engine (SQLite pragmas)."""
    db.init_app(app)
    with app.app_context():
        prepare_engine(db.engine)
