"""The signup floor: the least a Flask app can do to write the same two rows.

Serve it with gunicorn exactly like the real service::

    gunicorn 'bench.floor_app:create_app()'

``POST /signup`` inserts the user (``RETURNING id``) and its welcome email into
the outbox, the same columns the signup service writes, and commits once, over
plain psycopg. No ORM, no validation beyond a non-empty address, no template:
the gap between this and the real app is what those cost per request.
Each gunicorn thread keeps its own connection, as a pool would hand out.
"""

from __future__ import annotations

import os
import threading
import uuid

import psycopg
from flask import Flask, Response, jsonify, request

from bench.messages import HTML, SUBJECT, TEXT
from bench.pg import libpq_url

INSERT_USER = "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id"
INSERT_EMAIL = """
INSERT INTO outbox (recipient, subject, body_text, body_html, message_id, dedupe_key)
VALUES (%s, %s, %s, %s, %s, %s)
"""


class ThreadConnections:
    """One autocommit psycopg connection per thread, opened on first use."""

    def __init__(self, url: str) -> None:
        """Connect to the libpq ``url`` lazily, once per thread."""
        self.url = url
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[psycopg.Connection] = []  # for close_all()

    def get(self) -> psycopg.Connection:
        """Return this thread's connection, reconnecting if it was closed."""
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = psycopg.connect(self.url, autocommit=True)
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def close_all(self) -> None:
        """Close every thread's connection (gunicorn's exit does it otherwise)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


def create_app(database_url: str | None = None) -> Flask:
    """Return the floor app, on ``database_url`` or ``DATABASE_URL``."""
    app = Flask(__name__)
    connections = ThreadConnections(
        libpq_url(database_url or os.environ["DATABASE_URL"])
    )
    app.extensions["floor_connections"] = connections

    @app.post("/signup")
    def signup() -> tuple[Response, int]:
        """Insert the user and the email row, and commit both at once."""
        email = request.form.get("email", "").strip().lower()
        name = request.form.get("name") or None
        if not email:
            return jsonify(error="email is required"), 422
        connection = connections.get()
        with connection.transaction():  # BEGIN ... COMMIT: both rows or neither
            row = connection.execute(INSERT_USER, (email, name)).fetchone()
            assert row is not None  # INSERT ... RETURNING returns the row
            user_id = row[0]
            connection.execute(
                INSERT_EMAIL,
                (
                    email,
                    SUBJECT,
                    TEXT.format(email=email),
                    HTML.format(email=email),
                    f"<{uuid.uuid4().hex}@example.com>",
                    f"welcome:{user_id}",
                ),
            )
        return jsonify(id=user_id, email=email, name=name), 201

    return app
