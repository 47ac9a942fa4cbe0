"""to_mail_message: Flask-Mail's Message, field by field, with no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask_mail import Attachment, Message

from flask_outbox.convert import parse_sender, to_mail_message
from outbox_contract.message import Address, MessageError


def message(**fields: object) -> Message:
    """Return a message with an explicit sender, so no app context is needed."""
    return Message(
        **{
            "subject": "Hi",
            "recipients": ["ada@example.com"],
            "sender": "shop@example.com",
            **fields,
        }
    )


def test_to_mail_message_keeps_a_comma_in_a_pair_senders_name() -> None:
    # Flask-Mail's constructor turns the pair into "Doe, John <jd@example.com>".
    converted = to_mail_message(message(sender=("Doe, John", "jd@example.com")))

    assert converted.sender == Address("jd@example.com", "Doe, John")


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ('"Doe, John" <jd@example.com>', Address("jd@example.com", "Doe, John")),
        (("Doe, John", "jd@example.com"), Address("jd@example.com", "Doe, John")),
        ("Shop <shop@example.com>", Address("shop@example.com", "Shop")),
        ("shop@example.com", Address("shop@example.com")),
        (None, None),
    ],
)
def test_parse_sender_reads_every_form(
    sender: str | tuple[str, str] | None, expected: Address | None
) -> None:
    assert parse_sender(sender) == expected


def test_to_mail_message_reads_the_date_as_utc() -> None:
    date = datetime(2026, 12, 4, 7, 56, 8, tzinfo=UTC)

    assert to_mail_message(message(date=date.timestamp())).date == date
    assert to_mail_message(message()).date is None


def test_to_mail_message_refuses_a_date_that_is_not_a_timestamp() -> None:
    with pytest.raises(MessageError, match="timestamp"):
        to_mail_message(message(date="yesterday"))


def test_to_mail_message_stores_text_attachments_as_utf8() -> None:
    parts = [
        Attachment("note.txt", data="é"),
        Attachment(data=b"\x00\x01", disposition="inline", headers={"X-A": "1"}),
    ]

    note, blob = to_mail_message(message(attachments=parts)).attachments

    assert (note.content, note.content_type, note.filename) == (
        "é".encode(),
        "text/plain",
        "note.txt",
    )
    assert (blob.content, blob.content_type) == (
        b"\x00\x01",
        "application/octet-stream",
    )
    assert (blob.disposition, blob.headers) == ("inline", (("X-A", "1"),))


def test_to_mail_message_drops_the_message_id_and_reads_no_body_as_empty() -> None:
    converted = to_mail_message(message(body=None))

    assert converted.headers == ()
    assert converted.text == ""


def test_to_mail_message_accepts_utf8_by_any_name() -> None:
    assert to_mail_message(message(charset="UTF-8")).subject == "Hi"
