"""A small shop: ``POST /orders`` stores an order and mails its confirmation.

This file has a twin. In ``examples/seed_app`` the mail leaves from a thread
after the commit, so a crash, a deploy or an SMTP hiccup loses it unseen. In
``examples/outbox_app`` the same ``mail.send(msg)`` queues it in the order's
own transaction instead (see examples/README.md for the diff).

    flask --app app.py init-db   # this app's tables; the outbox's: outbox migrate
    flask --app app.py run
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from threading import Thread
from typing import Any

import click
from flask import Blueprint, Flask, copy_current_request_context, request
from flask_mail import Attachment, Mail, Message
from flask_sqlalchemy import SQLAlchemy
from markupsafe import escape
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SENDER = ("Shop, Inc.", "shop@example.com")  # a display name with a comma in it
# A 1x1 transparent PNG: the logo the HTML part shows inline, as cid:logo.
LOGO_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0bIDATx\x9cc`\x00\x02\x00\x00\x05"
    b"\x00\x01z^\xab?\x00\x00\x00\x00IEND\xaeB`\x82"
)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class Base(DeclarativeBase):
    """The models' base; named constraints keep later alembic diffs stable."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
mail = Mail()
bp = Blueprint("orders", __name__, cli_group=None)


class Order(db.Model):
    """One order: who bought how many of what."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    item: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]


def flag(environ: Mapping[str, str], name: str) -> bool:
    """Read a true/false (or 1/0) variable; anything else stops the start-up."""
    value = environ.get(name, "false").strip().lower()
    if value not in _BOOLEANS:
        raise ValueError(f"{name} must be true or false (or 1/0), got {value!r}")
    return _BOOLEANS[value]


def settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the database and Flask-Mail config from the environment."""
    # Flask-SQLAlchemy puts a relative SQLite path under the instance folder.
    url = environ.get("DATABASE_URL") or "sqlite:///shop.db"
    # A plain postgresql:// means psycopg2 to SQLAlchemy; this app has psycopg 3.
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url.removeprefix(scheme)
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "MAIL_SERVER": environ.get("MAIL_SERVER", "127.0.0.1"),
        "MAIL_PORT": int(environ.get("MAIL_PORT", "1025")),
        "MAIL_USE_TLS": flag(environ, "MAIL_USE_TLS"),
        "MAIL_USERNAME": environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": environ.get("MAIL_DEFAULT_SENDER", SENDER[1]),
    }


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the shop from the environment; ``config`` (tests) goes on top."""
    app = Flask(__name__)
    app.config.update(settings(os.environ))
    app.config.update(config or {})
    db.init_app(app)
    mail.init_app(app)
    app.register_blueprint(bp)
    return app


def order_csv(order: Order) -> bytes:
    """Return the order as a CSV file: a header row and the order's row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["order", "item", "quantity"])
    writer.writerow([order.id, order.item, order.quantity])
    return buffer.getvalue().encode()


def confirmation(order: Order) -> Message:
    """Return the order's confirmation: copies, a reply address, a CSV and a logo."""
    thanks = f"Thanks! {order.quantity} x {order.item} will be on their way soon."
    return Message(
        subject=f"Order {order.id} confirmed",
        recipients=[order.email],
        cc=["Sales <sales@example.com>"],
        bcc=["ledger@example.com"],  # the books keep a copy the customer never sees
        reply_to="Shop Help <help@example.com>",
        sender=SENDER,
        body=thanks,
        html=f'<p><img src="cid:logo" alt="Shop, Inc."> {escape(thanks)}</p>',
        extra_headers={"X-Order-Id": str(order.id)},
        attachments=[
            Attachment(f"order-{order.id}.csv", "text/csv", order_csv(order)),
            Attachment(
                "logo.png", "image/png", LOGO_PNG, "inline", {"Content-ID": "<logo>"}
            ),
        ],
    )


@bp.post("/orders")
def create_order() -> tuple[dict[str, Any], int]:
    """Store an order and mail its confirmation; answer with the order's id."""
    data = request.get_json()
    order = Order(email=data["email"], item=data["item"], quantity=data["quantity"])
    db.session.add(order)
    db.session.flush()  # gives the order the id its mail quotes
    message = confirmation(order)
    db.session.commit()
    Thread(target=copy_current_request_context(mail.send), args=(message,)).start()
    return {"id": order.id}, 201


@bp.cli.command("init-db")
def init_db() -> None:
    """Create this app's own tables; ``outbox migrate`` makes the outbox's."""
    db.create_all()
    click.echo("created the orders table")
