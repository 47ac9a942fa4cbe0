"""The benchmark's own PostgreSQL database: created fresh, migrated, dropped after."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from bench.context import SIGNUP_ENV
from bench.procs import ROOT
from outbox_contract import User
from outbox_contract.settings import database_url
from signup_service import create_app
from signup_service.database import db
from signup_service.welcome import enqueue_welcome_email

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _engine(url: URL) -> Engine:
    """Return an engine that keeps no connection open between uses."""
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """Create a uniquely named database, migrate it, yield its URL, then drop it."""
    admin = database_url({"DATABASE_URL": admin_url})
    name = f"outbox_bench_{uuid.uuid4().hex[:12]}"
    engine = _engine(admin)
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin.set(database=name).render_as_string(hide_password=False)
        try:
            migrate(url)
            yield url
        finally:
            with engine.connect() as connection:
                # FORCE ends the sessions of children killed mid-query.
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    """Run ``make migrate``'s two steps on ``url``: alembic, then outbox migrate."""
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "mailer_service.admin", "migrate"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
        capture_output=True,
    )


def truncate(url: str) -> None:
    """Empty the users and outbox tables between phases."""
    engine = _engine(database_url({"DATABASE_URL": url}))
    try:
        with engine.connect() as connection:
            # CASCADE: also every table that refers to these (the outbox's
            # attachments, its attempt history, whatever a migration adds).
            connection.execute(
                text(
                    "TRUNCATE outbox, users, idempotency_keys RESTART IDENTITY CASCADE"
                )
            )
    finally:
        engine.dispose()


def count_pending(url: str) -> int:
    """Return how many outbox rows are not yet sent or failed."""
    engine = _engine(database_url({"DATABASE_URL": url}))
    try:
        with engine.connect() as connection:
            query = "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
            return int(connection.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def insert_signups(url: str, emails: list[str]) -> None:
    """Write users and their welcome emails as the signup view does, minus HTTP."""
    app = create_app({"DATABASE_URL": url, **SIGNUP_ENV})
    with app.app_context():
        for email in emails:
            user = User(email=email, name=None)
            db.session.add(user)
            db.session.flush()  # assigns user.id, which the email row refers to
            enqueue_welcome_email(user.id, user)
        db.session.commit()
        db.engine.dispose()


def server_version(admin_url: str) -> str:
    """Return PostgreSQL's ``server_version`` setting."""
    engine = _engine(database_url({"DATABASE_URL": admin_url}))
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()
