"""Outbox.send: a Flask-Mail message, queued whole in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask_mail import Attachment, Message
from sqlalchemy import Engine

from flask_outbox import MessageError, MessageTooLarge
from tests.flask_outbox.shops import Shop, attachment_rows, count, queued_rows

DATE = datetime(2026, 12, 4, 7, 56, 8, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n fake logo"


def aware(value: datetime | str) -> datetime:
    """Read a timestamp column: SQLite returns text, in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def receipt(**fields: Any) -> Message:
    """Return a small valid message; ``fields`` replace or add Message arguments."""
    return Message(
        **{
            "subject": "Your receipt",
            "recipients": ["ada@example.com"],
            "body": "Thanks for your order.",
            **fields,
        }
    )


def test_send_queues_every_field_of_the_message(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop()
    with shop.app.app_context():
        message = Message(
            subject="Your receipt",
            recipients=[("Doe, John", "jd@example.com"), "ada@example.com"],
            cc=["Grace <grace@example.com>"],
            bcc=["audit@example.com"],
            reply_to=("Help, Desk", "help@example.com"),
            sender=("Shop, Ltd", "shop@example.com"),
            body="Thanks for your order.",
            html='<p>Thanks!</p><img src="cid:logo">',
            date=DATE.timestamp(),
            extra_headers={"X-Campaign": "spring", "List-Unsubscribe": "<mailto:u>"},
            attachments=[
                Attachment("receipt.txt", "text/plain", "Total: 12 €"),
                Attachment(
                    "logo.png", "image/png", PNG, "inline", {"Content-ID": "<logo>"}
                ),
            ],
        )
        row_id = shop.outbox.send(message)
        shop.db.session.commit()

    [row] = queued_rows(engine)
    assert row["id"] == row_id
    assert (row["recipient"], row["subject"]) == ("jd@example.com", "Your receipt")
    assert row["body_text"] == "Thanks for your order."
    assert row["body_html"] == '<p>Thanks!</p><img src="cid:logo">'
    assert row["status"] == "pending"
    assert row["message_id"].endswith("@example.com>")
    assert row["message"] == {
        "v": 1,
        "from": {"name": "Shop, Ltd", "address": "shop@example.com"},
        "to": [
            {"name": "Doe, John", "address": "jd@example.com"},
            {"name": "", "address": "ada@example.com"},
        ],
        "cc": [{"name": "Grace", "address": "grace@example.com"}],
        "bcc": [{"name": "", "address": "audit@example.com"}],
        "reply_to": {"name": "Help, Desk", "address": "help@example.com"},
        "date": "2026-12-04T07:56:08Z",
        "headers": [["X-Campaign", "spring"], ["List-Unsubscribe", "<mailto:u>"]],
        "attachments": 2,
    }
    text_part, logo = attachment_rows(engine)
    assert (text_part["outbox_id"], logo["outbox_id"]) == (row_id, row_id)
    assert text_part["filename"] == "receipt.txt"
    assert text_part["content_type"] == "text/plain"
    assert text_part["disposition"] == "attachment"
    assert text_part["headers"] is None
    assert bytes(text_part["content"]) == "Total: 12 €".encode()
    assert (logo["filename"], logo["content_type"]) == ("logo.png", "image/png")
    assert logo["disposition"] == "inline"
    assert logo["headers"] == [["Content-ID", "<logo>"]]
    assert bytes(logo["content"]) == PNG


def test_send_takes_the_default_sender_and_dates_the_row_at_queue_time(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop()
    with shop.app.app_context():
        shop.outbox.send(receipt())
        shop.db.session.commit()

    [row] = queued_rows(engine)
    assert row["message"]["from"] == {"name": "Shop", "address": "shop@example.com"}
    queued_at = datetime.fromisoformat(row["message"]["date"])
    assert abs(queued_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert row["body_html"] is None


def test_send_commits_nothing_itself(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop()
    with shop.app.app_context():
        shop.outbox.send(receipt(attachments=[Attachment("a.txt", data="a")]))
        shop.db.session.rollback()
        shop.db.session.commit()

    assert count(engine, "outbox") == 0
    assert count(engine, "outbox_attachments") == 0


def test_send_passes_priority_send_at_and_dedupe_key(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop(OUTBOX_MESSAGE_ID_DOMAIN="Mail.Shop.Example")
    later = datetime.now(UTC) + timedelta(hours=2)
    with shop.app.app_context():
        first = shop.outbox.send(
            receipt(), priority=-5, send_at=later, dedupe_key="receipt-42"
        )
        again = shop.outbox.send(receipt(), dedupe_key="receipt-42")
        shop.db.session.commit()

    [row] = queued_rows(engine)
    assert first == again == row["id"]
    assert (row["priority"], row["dedupe_key"]) == (-5, "receipt-42")
    assert abs(aware(row["available_at"]) - later) < timedelta(seconds=1)
    assert row["message_id"].endswith("@mail.shop.example>")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"extra_headers": {"Message-ID": "<mine@example.com>"}}, "Message-ID"),
        ({"extra_headers": {"Bcc": "spy@example.com"}}, "Bcc"),
        ({"extra_headers": {"X-Tag": "a\r\nBcc: spy@example.com"}}, "CR, LF"),
        ({"subject": "Hi\r\nBcc: spy@example.com"}, "CR, LF"),
        ({"alts": {"html": "<p>x</p>", "calendar": "BEGIN"}}, "'calendar'"),
        ({"rcpt_options": ["NOTIFY=SUCCESS"]}, "rcpt_options"),
        ({"mail_options": ["SMTPUTF8"]}, "mail_options"),
        ({"charset": "iso-8859-1"}, "charset"),
        ({"recipients": ["not an address"]}, "not an email address"),
    ],
)
def test_send_refuses_what_it_cannot_send_and_writes_nothing(
    make_shop: Callable[..., Shop],
    engine: Engine,
    fields: dict[str, Any],
    error: str,
) -> None:
    shop = make_shop()
    with shop.app.app_context():
        message = receipt(attachments=[Attachment("a.txt", data="a")], **fields)
        with pytest.raises(MessageError, match=error):
            shop.outbox.send(message)
        shop.db.session.commit()

    assert count(engine, "outbox") == 0
    assert count(engine, "outbox_attachments") == 0


def test_send_refuses_a_message_over_the_configured_size(
    make_shop: Callable[..., Shop], engine: Engine
) -> None:
    shop = make_shop(OUTBOX_MAX_MESSAGE_BYTES=500)
    big = Attachment("big.bin", "application/octet-stream", b"x" * 600)
    with shop.app.app_context():
        shop.outbox.send(receipt())  # well under the limit
        with pytest.raises(MessageTooLarge, match=r"over OUTBOX_MAX_MESSAGE_BYTES"):
            shop.outbox.send(receipt(attachments=[big]))
        shop.db.session.commit()

    assert count(engine, "outbox") == 1
    assert count(engine, "outbox_attachments") == 0
