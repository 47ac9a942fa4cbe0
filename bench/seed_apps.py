"""The two patterns this project replaces, copied from the seed as tiny Flask apps.

Serve them with gunicorn exactly like the real service::

    gunicorn 'bench.seed_apps:create_sync_app()'
    gunicorn 'bench.seed_apps:create_thread_app()'

Each view is the seed's, line for line, at ``POST /signup`` instead of
``/submit`` so the load generator sends every pattern the same form body
(``email=...``), which the signup service accepts too. Like the seed, they
write no user row: they do strictly less work per request than the outbox.
"""

from __future__ import annotations

from threading import Thread

from flask import Flask, request
from flask_mail import Mail, Message

from outbox_contract.settings import mail_settings

mail = Mail()


def _new_app() -> Flask:
    """Return a Flask app with Flask-Mail configured from the ``MAIL_*`` variables."""
    app = Flask(__name__)
    app.config.update(mail_settings())
    mail.init_app(app)
    return app


def create_sync_app() -> Flask:
    """The seed's first pattern: ``mail.send(msg)`` inside the request."""
    app = _new_app()

    @app.post("/signup")
    def submit() -> str:
        """Send the welcome mail, then answer."""
        msg = Message("Hello", recipients=[request.form["email"]])
        msg.body = "Thanks for signing up!"
        mail.send(msg)  # synchronous call
        return "Email sent!"

    return app


def send_async_email(app: Flask, msg: Message) -> None:
    """Send ``msg`` from a background thread, as the seed does."""
    with app.app_context():
        mail.send(msg)


def create_thread_app() -> Flask:
    """The seed's second pattern: a ``Thread`` per email, started in the request."""
    app = _new_app()

    @app.post("/signup")
    def submit() -> str:
        """Start a thread that sends the welcome mail, and answer at once."""
        msg = Message("Hello", recipients=[request.form["email"]])
        msg.body = "Thanks for signing up!"
        Thread(target=send_async_email, args=(app, msg)).start()  # async call
        return "Email sending started!"

    return app
