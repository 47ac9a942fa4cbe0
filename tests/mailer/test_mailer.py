"""The delivery loop in-process, with a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from mailer_service.store import OutboxStore
from tests.support.outbox import (
    LONG_AGO,
    outbox_rows,
    seed_outbox,
    set_timestamp,
    status_counts,
)
from tests.support.processes import free_port, wait_until
from tests.support.smtp import HangingServer


def test_mailer_sends_due_rows_and_records_sent(make_mailer, smtp, engine):
    seed_outbox(engine, 3)

    assert make_mailer().run_tick() == 3

    rows = outbox_rows(engine)
    assert [r["status"] for r in rows] == ["sent"] * 3
    assert [r["attempts"] for r in rows] == [1, 1, 1]
    assert all(r["sent_at"] is not None for r in rows)
    assert all(r["last_attempt_at"] == r["sent_at"] for r in rows)
    assert all(r["locked_by"] is None and r["locked_until"] is None for r in rows)
    assert all(r["last_error"] is None for r in rows)
    assert smtp.message_ids() == {r["message_id"]: 1 for r in rows}


def test_mailer_message_has_one_message_id_equal_to_the_row(make_mailer, smtp, engine):
    seed_outbox(engine, 1)

    make_mailer().run_tick()

    [row] = outbox_rows(engine)
    [message] = smtp.messages
    assert message.get_all("Message-ID") == [row["message_id"]]
    assert message["To"] == row["recipient"]
    assert message["Subject"] == row["subject"]
    assert message["From"] == "Outbox Demo <no-reply@example.com>"
    parts = {
        p.get_content_type(): p.get_content()
        for p in message.walk()
        if not p.is_multipart()
    }
    assert parts["text/plain"].strip() == row["body_text"]
    assert parts["text/html"].strip() == row["body_html"]


def test_mailer_leaves_future_rows_alone(make_mailer, smtp, engine):
    seed_outbox(engine, 2)
    set_timestamp(engine, "available_at", datetime.now(UTC) + timedelta(hours=1))

    assert make_mailer().run_tick() == 0

    assert status_counts(engine) == {"pending": 2}
    assert smtp.messages == []


def test_mailer_4xx_retries_after_backoff_with_the_same_message_id(
    make_mailer, smtp, engine
):
    seed_outbox(engine, 1)
    smtp.fail_next("451 4.7.1 greylisted, try later")
    mailer = make_mailer()

    mailer.run_tick()

    [row] = outbox_rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["last_error"] == "451 4.7.1 greylisted, try later"
    assert row["locked_by"] is None
    assert row["last_attempt_at"] is not None
    assert mailer.run_tick() == 0  # backing off: not due yet
    assert smtp.messages == []

    set_timestamp(engine, "available_at", LONG_AGO)  # the backoff has passed
    assert mailer.run_tick() == 1

    [row] = outbox_rows(engine)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert smtp.message_ids() == {row["message_id"]: 1}


def test_mailer_5xx_fails_after_one_attempt(make_mailer, smtp, engine):
    seed_outbox(engine, 2)
    smtp.fail_next("550 5.1.1 no such user")
    mailer = make_mailer()

    mailer.run_tick()
    set_timestamp(engine, "available_at", LONG_AGO)
    mailer.run_tick()

    first, second = outbox_rows(engine)
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert first["last_error"] == "550 5.1.1 no such user"
    assert first["last_attempt_at"] is not None
    assert (second["status"], second["attempts"]) == ("sent", 1)
    assert len(smtp.messages) == 1


def test_mailer_max_attempts_gives_failed(make_mailer, smtp, engine):
    seed_outbox(engine, 1)
    smtp.fail_next("451 busy", "452 busy", "421 closing")
    mailer = make_mailer(max_attempts=3)

    statuses = []
    for _ in range(4):
        mailer.run_tick()
        [row] = outbox_rows(engine)
        statuses.append((row["status"], row["attempts"]))
        set_timestamp(engine, "available_at", LONG_AGO)

    assert statuses == [("pending", 1), ("pending", 2), ("failed", 3), ("failed", 3)]
    assert outbox_rows(engine)[0]["last_error"] == "421 closing"
    assert smtp.messages == []


def test_mailer_dropped_connection_releases_the_rest_uncharged(
    make_mailer, smtp, engine
):
    seed_outbox(engine, 5)
    smtp.fail_next("ok", "drop")

    assert make_mailer().run_tick() == 2

    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"]) for r in rows] == [
        ("sent", 1),
        ("pending", 1),
        ("pending", 0),
        ("pending", 0),
        ("pending", 0),
    ]
    assert "Disconnected" in rows[1]["last_error"]
    assert all(r["locked_by"] is None for r in rows)
    assert [r["last_error"] for r in rows[2:]] == [None, None, None]


def test_mailer_reconnects_after_a_short_pause(make_mailer, smtp, engine):
    seed_outbox(engine, 4)
    smtp.fail_next("drop")
    mailer = make_mailer(poll_interval=0.2)

    mailer.run_tick()
    assert wait_until(lambda: time.monotonic() >= mailer.pause.until, 10)
    mailer.run_tick()

    assert [r["status"] for r in outbox_rows(engine)] == ["pending"] + ["sent"] * 3


def test_mailer_pauses_claims_while_smtp_is_unreachable(make_mailer, engine, caplog):
    """No storm against a dead server: each failure doubles the pause."""
    seed_outbox(engine, 3)
    mailer = make_mailer(port=free_port(), poll_interval=20)

    mailer.run_tick()
    assert mailer.run_tick() == 0  # paused: nothing claimed, nobody charged
    attempts = [r["attempts"] for r in outbox_rows(engine)]
    mailer.pause.until = 0.0  # as if the pause were over
    mailer.run_tick()

    assert attempts == [1, 0, 0]
    assert [r["attempts"] for r in outbox_rows(engine)] == [1, 1, 0]
    pauses = [r.getMessage() for r in caplog.records if "no claims" in r.getMessage()]
    assert pauses == [
        "SMTP connection failed; no claims for 20.0s",
        "SMTP connection failed; no claims for 40.0s",
    ]
    assert mailer.pause.until > time.monotonic()


def test_mailer_connection_refused_is_transient(make_mailer, smtp, engine):
    seed_outbox(engine, 3)

    make_mailer(port=free_port()).run_tick()

    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"]) for r in rows] == [
        ("pending", 1),
        ("pending", 0),
        ("pending", 0),
    ]
    assert "ConnectionRefusedError" in rows[0]["last_error"]


def test_mailer_hanging_server_times_out_and_records_it(make_mailer, engine):
    seed_outbox(engine, 2)

    with HangingServer() as hanging:
        make_mailer(port=hanging.port).run_tick()

    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"]) for r in rows] == [
        ("pending", 1),
        ("pending", 0),
    ]
    assert "timed out" in rows[0]["last_error"]


def test_mailer_server_stalling_mid_message_times_out(make_mailer, smtp, engine):
    seed_outbox(engine, 2)
    smtp.stall_seconds = 1.5
    smtp.fail_next("stall")

    make_mailer().run_tick()

    first, second = outbox_rows(engine)
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert "timed out" in first["last_error"]
    assert (second["status"], second["attempts"]) == ("pending", 0)


def test_mailer_unbuildable_message_fails_permanently(make_mailer, smtp, engine):
    seed_outbox(engine, 2)
    with engine.begin() as connection:  # a subject that would inject a header
        connection.execute(
            text("UPDATE outbox SET subject = 'Hi' || char(10) || 'Bcc: x@example.com'"
                 " WHERE id = (SELECT min(id) FROM outbox)")
            if engine.dialect.name == "sqlite"
            else text("UPDATE outbox SET subject = E'Hi\\nBcc: x@example.com'"
                      " WHERE id = (SELECT min(id) FROM outbox)")
        )  # fmt: skip

    make_mailer().run_tick()

    first, second = outbox_rows(engine)
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert "BadHeaderError" in first["last_error"]
    assert second["status"] == "sent"
    assert len(smtp.messages) == 1


def test_mailer_non_ascii_recipient_fails_alone(make_mailer, smtp, engine):
    """Without SMTPUTF8 a non-ASCII local part cannot be sent: only that row fails."""
    seed_outbox(engine, 2)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE outbox SET recipient = 'jürgen@example.com' WHERE id = 1")
        )

    make_mailer().run_tick()

    first, second = outbox_rows(engine)
    assert (first["status"], first["attempts"]) == ("failed", 1)
    assert "UnicodeEncodeError" in first["last_error"]
    assert (second["status"], second["attempts"]) == ("sent", 1)
    assert smtp.message_ids() == {second["message_id"]: 1}


def test_mailer_stop_mid_batch_releases_unsent_rows(make_mailer, smtp, engine):
    seed_outbox(engine, 5)
    mailer = make_mailer()
    smtp.on_message = lambda accepted: mailer.stop() if accepted == 1 else None

    mailer.run_tick()

    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"]) for r in rows] == [
        ("sent", 1),
        ("sent", 1),
        ("pending", 0),
        ("pending", 0),
        ("pending", 0),
    ]
    assert status_counts(engine).get("sending") is None
    assert mailer.run_tick() == 0  # a stopped mailer claims nothing more


def test_mailer_skips_a_row_whose_lease_was_taken_mid_batch(make_mailer, smtp, engine):
    """A worker never starts sending a row it no longer holds."""
    ids = seed_outbox(engine, 3)

    def steal_second_row(accepted: int) -> None:
        if accepted == 0:
            with engine.begin() as connection:
                connection.execute(
                    text(
                        "UPDATE outbox SET locked_by = 'thief',"
                        " locked_until = '2999-01-01 00:00:00.000' WHERE id = :id"
                    ),
                    {"id": ids[1]},
                )

    smtp.on_message = steal_second_row
    # A tiny lease makes the mailer renew its hold before every message; the
    # thief's lease lasts, so no later claim takes the row back either.
    make_mailer(lease_seconds=0.001, batch_size=16).run_tick()

    rows = outbox_rows(engine)
    assert [(r["status"], r["locked_by"]) for r in rows] == [
        ("sent", None),
        ("sending", "thief"),
        ("sent", None),
    ]
    assert len(smtp.messages) == 2


def test_mailer_reclaims_rows_of_a_crashed_worker_after_the_lease(
    make_mailer, smtp, engine
):
    seed_outbox(engine, 2)
    with engine.connect() as connection:
        OutboxStore(connection, "crashed", 30).claim_due_rows(10)
    survivor = make_mailer(mailer_id="survivor")

    assert survivor.run_tick() == 0  # the lease still protects the rows
    set_timestamp(engine, "locked_until", LONG_AGO, "status = 'sending'")
    assert survivor.run_tick() == 2

    assert [r["status"] for r in outbox_rows(engine)] == ["sent", "sent"]
    assert len(smtp.messages) == 2


def test_mailer_survives_a_database_error_and_recovers(make_mailer, smtp, engine):
    seed_outbox(engine, 1)
    mailer = make_mailer()
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))

    assert mailer.run_tick() == 0  # logged, not raised

    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE outbox_away RENAME TO outbox"))
    assert mailer.run_tick() == 1
    assert status_counts(engine) == {"sent": 1}


def test_mailer_records_an_outcome_the_database_refused_at_the_next_tick(
    make_mailer, smtp, engine
):
    """The server accepted a message, then the write failed: never send it again.

    While the database fails, the SMTP workers stop: what was sent and not
    recorded never exceeds the message in flight plus the completer's backlog.
    """
    seed_outbox(engine, 40)

    def rename(old: str, new: str) -> None:
        with engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    smtp.on_message = lambda accepted: (
        rename("outbox", "away") if accepted == 0 else None
    )
    mailer = make_mailer()

    assert mailer.run_tick() == 0  # message 1 accepted; recording it failed
    unrecorded = len(smtp.messages)
    assert 1 <= unrecorded <= 1 + mailer.completer.backlog < 40
    assert mailer.completer.carried == unrecorded

    smtp.on_message = None
    rename("away", "outbox")
    # The unwritten rows' leases have run out: the next tick must write their
    # outcomes before it claims, or it would take them back and send again.
    set_timestamp(engine, "locked_until", LONG_AGO, "status = 'sending'")
    mailer.run_tick()

    rows = outbox_rows(engine)
    assert [(r["status"], r["attempts"]) for r in rows] == [("sent", 1)] * 40
    assert mailer.run_tick() == 0
    assert sorted(smtp.message_ids().values()) == [1] * 40


def test_mailer_logs_a_database_outage_once_with_traceback(
    make_mailer, smtp, engine, caplog
):
    caplog.set_level(logging.INFO, logger="mailer_service")
    seed_outbox(engine, 1)
    mailer = make_mailer()
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))

    for _ in range(3):
        mailer.run_tick()

    failures = [r for r in caplog.records if getattr(r, "action", "") == "tick_failed"]
    assert [r.exc_info is not None for r in failures] == [True, False, False]
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE outbox_away RENAME TO outbox"))
    assert mailer.run_tick() == 1
    assert "database is back" in caplog.text
