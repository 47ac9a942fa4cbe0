"""enqueue_email: any producer queues mail inside its own transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from outbox_contract import Outbox, User, enqueue_email
from outbox_contract.database import prepare_engine
from tests.support.outbox import outbox_rows


def test_enqueue_email_commits_with_the_callers_own_writes(engine: Engine) -> None:
    """A password reset, the second kind of mail, queued next to its own row."""
    prepare_engine(engine)
    with Session(engine) as session:
        user = User(email="ada@example.com", name="Ada")
        session.add(user)
        session.flush()
        row = enqueue_email(
            session,
            to=user.email,
            subject="Reset your password",
            text="Follow this link to reset your password.",
            html="<p>Follow this link to reset your password.</p>",
            message_id_domain="shop.example",
        )
        session.commit()
        row_id = row.id

    [stored] = outbox_rows(engine)
    assert stored["id"] == row_id
    assert stored["status"] == "pending"
    assert stored["recipient"] == "ada@example.com"
    assert stored["subject"] == "Reset your password"
    assert stored["message_id"].endswith("@shop.example>")


def test_enqueue_email_rolls_back_with_the_caller(engine: Engine) -> None:
    with Session(engine) as session:
        enqueue_email(session, to="a@example.com", subject="Receipt", text="Thanks")
        session.rollback()

        assert session.scalar(select(func.count()).select_from(Outbox)) == 0


def test_enqueue_email_message_id_defaults_to_the_sender_domain(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_DEFAULT_SENDER", "Shop <hello@Mail.Shop.Example>")
    with Session(engine) as session:
        first = enqueue_email(session, to="a@example.com", subject="A", text="x")
        second = enqueue_email(session, to="a@example.com", subject="B", text="y")
        session.commit()
        ids = (first.message_id, second.message_id)

    assert all(i.endswith("@mail.shop.example>") for i in ids)
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"to": "a@example.com\r\nBcc: x@example.com"}, "must not contain CR"),
        ({"to": "not-an-address"}, "not an email address"),
        ({"subject": "Hi\nBcc: x@example.com"}, "subject must not contain CR"),
        ({"subject": ""}, "subject must be one non-empty"),
    ],
)
def test_enqueue_email_rejects_header_injection(
    engine: Engine, fields: dict[str, str], message: str
) -> None:
    values = {"to": "a@example.com", "subject": "Hi", "text": "x", **fields}
    with Session(engine) as session, pytest.raises(ValueError, match=message):
        enqueue_email(session, **values)
