"""A second kind of mail, queued with enqueue_email, is delivered like the welcome."""

from __future__ import annotations

from sqlalchemy.orm import Session

from outbox_contract import enqueue_email
from outbox_contract.database import prepare_engine


def test_password_reset_queued_by_another_producer_is_delivered(
    make_mailer, smtp, engine
):
    prepare_engine(engine)
    with Session(engine) as session:
        row = enqueue_email(
            session,
            to="grace@example.com",
            subject="Reset your password",
            text="Use this link within an hour: https://shop.example/reset/abc",
            html="<p>Use <a href='https://shop.example/reset/abc'>this link</a>.</p>",
        )
        session.commit()
        message_id = row.message_id

    assert make_mailer().run_tick() == 1

    [message] = smtp.messages
    assert message["To"] == "grace@example.com"
    assert message["Subject"] == "Reset your password"
    assert message["Message-ID"] == message_id
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "https://shop.example/reset/abc" in text
    assert "this link</a>" in html
