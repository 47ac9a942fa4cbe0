"""MailMessage: what a whole message may hold, checked before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from outbox_contract import (
    Attachment,
    MailMessage,
    MessageError,
    MessageTooLarge,
    Outbox,
    OutboxAttachment,
    enqueue_email,
)
from outbox_contract.message import Address, StoredEnvelope


def counts(engine: Engine) -> tuple[int, int]:
    """Return how many outbox and attachment rows there are."""
    with Session(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(Outbox)),
            session.scalar(select(func.count()).select_from(OutboxAttachment)),
        )


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"headers": {"Message-ID": "<x@y>"}}, "Message-ID header is set by the"),
        ({"headers": {"BCC": "spy@example.com"}}, "BCC header is set by the outbox"),
        ({"headers": {"X-A": "1\r\nBcc: spy@example.com"}}, "must not contain CR"),
        ({"headers": {"X-A": "nul\0"}}, "must not contain CR, LF or NUL"),
        ({"headers": {"X A": "1"}}, "not a header name"),
        ({"headers": {"X-Long": "y" * 1000}}, "longer than 998 octets"),
        ({"to": [("Ann\n", "ann@example.com")]}, "must not contain CR"),
        ({"to": ["ann@"]}, "not an email address"),
        ({"to": [], "cc": []}, "at least one recipient"),
        ({"sender": "shop\r@example.com"}, "must not contain CR"),
    ],
)
def test_enqueue_email_refuses_an_unsafe_message_and_writes_nothing(
    engine: Engine, fields: dict, problem: str
) -> None:
    with Session(engine) as session, pytest.raises(MessageError, match=problem):
        message = MailMessage.build(
            **{"subject": "Hi", "to": ["a@example.com"], **fields}
        )
        enqueue_email(session, message)
    with Session(engine) as session:
        enqueue_email(session, to="ok@example.com", subject="Fine", text="x")
        session.commit()  # the session is usable, and only this row was written

    assert counts(engine) == (1, 0)


def test_enqueue_email_refuses_an_oversize_message_and_writes_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTBOX_MAX_MESSAGE_BYTES", "50000")
    big = MailMessage.build(
        subject="Report",
        to=["a@example.com"],
        attachments=(Attachment(b"x" * 50_001, "application/pdf", "r.pdf"),),
    )
    with Session(engine) as session:
        with pytest.raises(MessageTooLarge, match="over OUTBOX_MAX_MESSAGE_BYTES"):
            enqueue_email(session, big)
        session.commit()

    assert counts(engine) == (0, 0)
    assert isinstance(MessageTooLarge("x"), ValueError)


def test_enqueue_email_rolls_back_the_row_and_its_attachments(engine: Engine) -> None:
    message = MailMessage.build(
        subject="Invoice",
        to=["a@example.com"],
        attachments=(Attachment(b"%PDF", "application/pdf", "i.pdf"),),
    )
    with Session(engine) as session:
        enqueue_email(session, message)
        assert counts(engine) == (0, 0)  # not committed: invisible elsewhere
        session.rollback()

    assert counts(engine) == (0, 0)


def test_stored_message_round_trips_every_name_exactly() -> None:
    message = MailMessage.build(
        subject="Hi",
        sender=("Shop, Inc.", "shop@example.com"),
        to=['"Doe, John" <jd@example.com>', ("Zoë", "zoe@example.com")],
        cc=[("O'Brien, Pat", "pat@example.com")],
        bcc=["audit@example.com"],
        reply_to="help@example.com",
        headers=[("X-Tag", "a"), ("X-Tag", "b")],
    )

    stored = StoredEnvelope.from_row("ignored", message.to_json(_date()))

    assert stored.sender == Address("shop@example.com", "Shop, Inc.")
    assert stored.to == (
        Address("jd@example.com", "Doe, John"),
        Address("zoe@example.com", "Zoë"),
    )
    assert stored.cc == (Address("pat@example.com", "O'Brien, Pat"),)
    assert stored.bcc == (Address("audit@example.com"),)
    assert stored.headers == (("X-Tag", "a"), ("X-Tag", "b"))
    assert stored.date == _date()


def test_stored_message_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(MessageError, match="unknown version 2"):
        StoredEnvelope.from_row("a@example.com", {"v": 2, "to": []})


def _date() -> datetime:
    """A fixed, whole-second, aware time."""
    return datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
