"""A cancelled row is never sent, and its dedupe key is free again."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from outbox_contract import enqueue_email
from outbox_contract.database import prepare_engine
from tests.support.admin import outbox


def test_cancel_by_dedupe_key_frees_the_key(database_url, engine, make_mailer, smtp):
    prepare_engine(engine)
    with Session(engine) as session:
        enqueue_email(
            session, to="a@example.com", subject="Hi", text="x", dedupe_key="reset:7"
        )
        session.commit()

    result = outbox(database_url, "cancel", "--dedupe-key", "reset:7")
    again = outbox(database_url, "cancel", "--dedupe-key", "reset:7")

    assert result.exit_code == 0, result.output
    assert again.exit_code == 1
    assert "no pending row has dedupe key 'reset:7'" in again.stderr
    with Session(engine) as session:
        fresh = enqueue_email(
            session, to="a@example.com", subject="Hi", text="y", dedupe_key="reset:7"
        )
        session.commit()
    make_mailer().run_tick()
    with engine.connect() as connection:
        statuses = dict(connection.execute(text("SELECT id, status FROM outbox")).all())
    assert statuses == {1: "cancelled", fresh.id: "sent"}
    assert len(smtp.messages) == 1  # the cancelled row was never sent
