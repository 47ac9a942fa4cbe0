"""Retention: redact old sent rows, keep an audit record, never touch queued mail."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import URL, Engine, bindparam, text

from mailer_service.retention import recipient_hash, redact_sent
from outbox_contract.schema import Timestamp
from tests.support.admin import outbox
from tests.support.delivery_states import CC_ADA, ROWS, USERS, seed_every_state
from tests.support.outbox import outbox_rows

KEY = "k" * 40  # MAILER_REDACTION_KEY for these tests


def test_redact_blanks_only_old_sent_rows_and_keeps_the_audit_record(
    database_url: URL, engine: Engine
):
    seed_every_state(engine)
    before = {r["id"]: r for r in outbox_rows(engine)}

    result = outbox(
        database_url, "redact", "--sent-older-than", "1d", MAILER_REDACTION_KEY=KEY
    )

    assert result.exit_code == 0, result.output
    assert "redacted 1 sent rows" in result.output
    after = {r["id"]: r for r in outbox_rows(engine)}
    [sent_id] = [i for i, row in ROWS.items() if row[0] == "sent"]
    redacted = after[sent_id]
    assert (redacted["recipient"], redacted["body_text"]) == ("", "")
    assert redacted["body_html"] is None
    assert redacted["recipient_hash"] == recipient_hash(
        KEY.encode(), before[sent_id]["recipient"]
    )
    kept = ("id", "status", "created_at", "sent_at", "message_id", "attempts")
    assert {k: redacted[k] for k in kept} == {k: before[sent_id][k] for k in kept}
    # pending, sending and failed rows are exactly as they were
    assert {i: r for i, r in after.items() if i != sent_id} == {
        i: r for i, r in before.items() if i != sent_id
    }


def test_redact_leaves_recent_sent_rows_alone(database_url: URL, engine: Engine):
    seed_every_state(engine)  # its sent row was delivered two days ago

    result = outbox(
        database_url, "redact", "--sent-older-than", "3d", MAILER_REDACTION_KEY=KEY
    )

    assert "redacted 0 sent rows" in result.output
    assert all(r["recipient_hash"] is None for r in outbox_rows(engine))


def test_redact_in_batches_until_done(database_url: URL, engine: Engine):
    seed_every_state(engine)
    rows, batches = redact_sent(engine, 3600.0, KEY.encode(), batch_size=1)

    assert (rows, batches) == (1, 2)


def test_mailed_finds_an_address_before_and_after_redaction(
    database_url: URL, engine: Engine
):
    seed_every_state(engine)
    [sent_id] = [i for i, row in ROWS.items() if row[0] == "sent"]
    address = USERS[ROWS[sent_id][1]]

    before = outbox(database_url, "mailed", address.upper(), MAILER_REDACTION_KEY=KEY)
    outbox(database_url, "redact", "--sent-older-than", "1d", MAILER_REDACTION_KEY=KEY)
    after = outbox(database_url, "mailed", address, MAILER_REDACTION_KEY=KEY)

    assert before.exit_code == after.exit_code == 0
    assert before.output.startswith(f"{sent_id} sent")
    assert after.output.startswith(f"{sent_id} sent")
    assert "(redacted)" in after.output and "(redacted)" not in before.output


def test_mailed_exits_1_for_an_unknown_address(database_url: URL, engine: Engine):
    seed_every_state(engine)

    result = outbox(
        database_url, "mailed", "nobody@example.com", MAILER_REDACTION_KEY=KEY
    )

    assert result.exit_code == 1
    assert "no mail to that address" in result.output


def test_redact_needs_a_long_enough_key(database_url: URL, engine: Engine):
    seed_every_state(engine)

    result = outbox(
        database_url, "redact", "--sent-older-than", "1d", MAILER_REDACTION_KEY="x"
    )

    assert result.exit_code == 1
    assert "MAILER_REDACTION_KEY must be set" in result.output
    assert all(r["recipient_hash"] is None for r in outbox_rows(engine))


def test_redact_blanks_the_whole_message_history_and_old_suppressions(
    database_url: URL, engine: Engine
):
    now = seed_every_state(engine)  # row 1: sent two days ago, to ada@example.com
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE outbox SET message = :message, last_error = :error WHERE id = 1"
            ),
            {"message": json.dumps(CC_ADA), "error": "451 4.2.1 ada@example.com busy"},
        )
        connection.execute(
            text(
                "INSERT INTO outbox_attachments (outbox_id, position, content_type,"
                " disposition, content) VALUES (1, 0, 'text/plain', 'attachment', :c)"
            ),
            {"c": b"for ada"},
        )
        connection.execute(
            text(
                "INSERT INTO outbox_attempts (outbox_id, attempt, started_at, ended_at,"
                " worker, result, smtp_code, error, refused)"
                " VALUES (1, 1, :at, :at, 'w', 'sent', 250, :error, :refused)"
            ).bindparams(bindparam("at", type_=Timestamp)),
            {
                "at": now - timedelta(days=2),
                "error": "550 ada@example.com refused",
                "refused": json.dumps({"ada@example.com": [550, "no"]}),
            },
        )
        connection.execute(
            text(
                "INSERT INTO outbox_suppressions (address, reason, created_at)"
                " VALUES ('old@example.com', 'bounce', :old),"
                " ('new@example.com', 'bounce', :new)"
            ).bindparams(
                bindparam("old", type_=Timestamp), bindparam("new", type_=Timestamp)
            ),
            {"old": now - timedelta(days=3), "new": now},
        )

    result = outbox(
        database_url, "redact", "--sent-older-than", "1d", MAILER_REDACTION_KEY=KEY
    )

    assert result.exit_code == 0, result.output
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT message, refused, last_error FROM outbox WHERE id = 1")
        ).one()
        attempt = connection.execute(
            text(
                "SELECT result, smtp_code, error, refused FROM outbox_attempts"
                " WHERE outbox_id = 1"
            )
        ).one()
        files = connection.execute(text("SELECT count(*) FROM outbox_attachments"))
        suppressed = connection.execute(text("SELECT address FROM outbox_suppressions"))
        assert tuple(row) == (None, None, None)
        assert tuple(attempt) == ("sent", 250, None, None)
        assert files.scalar_one() == 0
        assert suppressed.scalars().all() == ["new@example.com"]
