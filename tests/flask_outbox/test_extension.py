"""The Outbox extension: registration, the OUTBOX_CAPTURE_MAIL switch, recording."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, current_app
from flask_mail import Mail, Message
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import URL, Engine

from flask_outbox import MessageError, Outbox, QueuedMessage
from flask_outbox.extension import OutboxState
from outbox_contract.settings import ConfigError
from tests.flask_outbox.shops import Shop, count, queued_rows, shop_config


def welcome(to: str = "ada@example.com") -> Message:
    """Return a welcome message to ``to``, from the default sender."""
    return Message("Welcome", recipients=[to], body="Hello!")


def test_outbox_constructor_registers_on_the_app(database_url: URL) -> None:
    app = Flask(__name__)
    app.config.update(shop_config(database_url, OUTBOX_MAX_MESSAGE_BYTES="2048"))
    db = SQLAlchemy(app)
    outbox = Outbox(app, db)

    state = app.extensions["outbox"]
    assert isinstance(state, OutboxState)
    assert (state.outbox, state.db) == (outbox, db)
    assert (state.max_message_bytes, state.capture_mail) == (2048, False)
    assert state.message_id_domain is None
    assert not hasattr(outbox, "app")
    with app.app_context():
        db.engine.dispose()


def test_init_app_registers_on_the_app(make_shop: Callable[..., Shop]) -> None:
    shop = make_shop(OUTBOX_MESSAGE_ID_DOMAIN="Mail.Shop.Example")

    state = shop.app.extensions["outbox"]
    assert (state.outbox, state.db) == (shop.outbox, shop.db)
    assert state.message_id_domain == "mail.shop.example"


def test_outbox_serving_two_apps_keeps_them_apart(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    outbox = Outbox()
    capturing = make_shop(
        outbox, OUTBOX_CAPTURE_MAIL=True, OUTBOX_MESSAGE_ID_DOMAIN="a.example"
    )
    sending = make_shop(outbox, OUTBOX_MESSAGE_ID_DOMAIN="b.example")

    assert capturing.app.extensions["outbox"].db is capturing.db
    assert sending.app.extensions["outbox"].db is sending.db
    with capturing.app.app_context():
        capturing.mail.send(welcome("one@example.com"))
        capturing.db.session.commit()
    with sending.app.app_context():
        outbox.send(welcome("two@example.com"))
        with pytest.raises(ConnectionRefusedError):
            sending.mail.send(welcome("three@example.com"))
        sending.db.session.commit()

    queued = {row["recipient"]: row["message_id"] for row in queued_rows(engine)}
    assert queued.keys() == {"one@example.com", "two@example.com"}
    assert queued["one@example.com"].endswith("@a.example>")
    assert queued["two@example.com"].endswith("@b.example>")


def test_capture_mail_queues_flask_mail_sends_without_smtp(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop(OUTBOX_CAPTURE_MAIL=True)
    with shop.app.app_context(), shop.mail.record_messages() as dispatched:
        shop.mail.send(welcome("one@example.com"))
        # How Flask-Security and other extensions reach Flask-Mail.
        current_app.extensions["mail"].send(welcome("two@example.com"))
        shop.db.session.commit()

    rows = queued_rows(engine)
    assert [row["recipient"] for row in rows] == ["one@example.com", "two@example.com"]
    assert rows[0]["message"]["from"] == {"name": "Shop", "address": "shop@example.com"}
    assert len(dispatched) == 2  # Flask-Mail's own recorder still sees them


def test_capture_mail_queues_in_the_callers_transaction(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop(OUTBOX_CAPTURE_MAIL="true")
    with shop.app.app_context():
        shop.mail.send(welcome())
        shop.db.session.rollback()

    assert count(engine, "outbox") == 0


def test_capture_mail_errors_propagate_from_mail_send(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop(OUTBOX_CAPTURE_MAIL=True)
    with shop.app.app_context():
        message = welcome()
        message.extra_headers = {"Message-ID": "<mine@example.com>"}
        with pytest.raises(MessageError, match="Message-ID"):
            shop.mail.send(message)
        shop.db.session.commit()

    assert count(engine, "outbox") == 0


def test_capture_mail_off_leaves_flask_mail_sending(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop()
    with shop.app.app_context():
        with pytest.raises(ConnectionRefusedError):
            shop.mail.send(welcome())
        shop.db.session.commit()

    assert count(engine, "outbox") == 0


def test_init_app_capture_mail_needs_flask_mail_first(database_url: URL) -> None:
    app = Flask(__name__)
    app.config.update(shop_config(database_url, OUTBOX_CAPTURE_MAIL=True))
    db = SQLAlchemy(app)

    with pytest.raises(RuntimeError, match=r"call Mail\(app\).*before Outbox"):
        Outbox(app, db)
    assert "outbox" not in app.extensions
    Mail(app)
    Outbox(app, db)
    assert app.extensions["mail"].suppress
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"OUTBOX_MAX_MESSAGE_BYTES": 0}, "OUTBOX_MAX_MESSAGE_BYTES must be at least"),
        ({"OUTBOX_MAX_MESSAGE_BYTES": "ten"}, "OUTBOX_MAX_MESSAGE_BYTES must be an"),
        ({"OUTBOX_MESSAGE_ID_DOMAIN": "a.example>\r\n"}, "not a domain"),
        ({"OUTBOX_CAPTURE_MAIL": "maybe"}, "OUTBOX_CAPTURE_MAIL must be true"),
    ],
)
def test_init_app_refuses_bad_config(
    make_shop: Callable[..., Shop], config: dict[str, object], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        make_shop(**config)


def test_record_messages_sees_what_was_queued_inside_the_block(
    make_shop: Callable[..., Shop],
) -> None:
    shop = make_shop(OUTBOX_CAPTURE_MAIL=True)
    with shop.app.app_context():
        shop.outbox.send(welcome("before@example.com"))
        message = welcome("inside@example.com")
        with shop.outbox.record_messages() as queued:
            row_id = shop.outbox.send(message, priority=3, dedupe_key="welcome-1")
            shop.mail.send(welcome("captured@example.com"))
        shop.outbox.send(welcome("after@example.com"))
        shop.db.session.rollback()

    assert queued[0] == QueuedMessage(row_id, message, 3, None, "welcome-1")
    assert [q.message.recipients for q in queued] == [
        ["inside@example.com"],
        ["captured@example.com"],
    ]
