"""Delivery bookkeeping: attempt history, the suppression list, priority in a batch.

Real mailer ticks against aiosmtpd, which refuses chosen recipients at RCPT TO
(``smtp.refuse_recipients``) or whole messages at DATA (``smtp.fail_next``).
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from outbox_contract import MailMessage, enqueue_email
from outbox_contract.database import prepare_engine


def queue(engine: Engine, *to: str, cc: tuple[str, ...] = (), **options) -> int:
    """Queue a small message to ``to`` (and ``cc``); return its row id."""
    prepare_engine(engine)
    with Session(engine) as session:
        message = MailMessage.build(subject="Hi", to=list(to), cc=list(cc), text="x")
        row_id = enqueue_email(session, message, **options).id
        session.commit()
    return row_id


def rows(engine: Engine, sql: str, **params) -> list[dict]:
    """Return the rows of ``sql`` as dicts."""
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(text(sql), params).mappings()]


def attempts(engine: Engine, row_id: int) -> list[dict]:
    """Return one outbox row's attempt history, oldest first."""
    return rows(
        engine,
        "SELECT attempt, worker, result, smtp_code, enhanced_code, error, refused,"
        " started_at, ended_at FROM outbox_attempts WHERE outbox_id = :id"
        " ORDER BY attempt",
        id=row_id,
    )


def status(engine: Engine, row_id: int) -> str:
    """Return one outbox row's status."""
    return rows(engine, "SELECT status FROM outbox WHERE id = :id", id=row_id)[0][
        "status"
    ]


def suppressed(engine: Engine) -> dict[str, tuple]:
    """Return the suppression list: address -> (reason, code, enhanced code)."""
    return {
        r["address"]: (r["reason"], r["smtp_code"], r["enhanced_code"])
        for r in rows(engine, "SELECT * FROM outbox_suppressions")
    }


def as_json(value):
    """Read a JSON column: a dict on PostgreSQL, text on SQLite."""
    return json.loads(value) if isinstance(value, str) else value


def test_every_attempt_is_recorded_with_what_the_server_said(make_mailer, smtp, engine):
    row_id = queue(engine, "ann@example.com")
    smtp.fail_next("451 4.3.0 try again later")
    mailer = make_mailer(
        mailer_id="worker-a", backoff_seconds=0.001, backoff_max_seconds=0.001
    )

    mailer.run_tick()
    mailer.run_tick()

    history = attempts(engine, row_id)
    assert [(a["attempt"], a["result"], a["smtp_code"]) for a in history] == [
        (1, "retry", 451),
        (2, "sent", 250),
    ]
    assert history[0]["enhanced_code"] == "4.3.0"
    assert history[0]["error"] == "451 4.3.0 try again later"
    assert {a["worker"] for a in history} == {"worker-a"}
    assert all(a["started_at"] <= a["ended_at"] for a in history)
    assert rows(engine, "SELECT attempts FROM outbox")[0]["attempts"] == len(history)


def test_a_hard_bounce_suppresses_the_address_and_later_mail_skips_it(
    make_mailer, smtp, engine
):
    smtp.refuse_recipients["gone@example.com"] = "550 5.1.1 no such user"
    first = queue(engine, "ann@example.com", cc=("Gone@Example.com",))
    make_mailer().run_tick()
    assert suppressed(engine) == {"gone@example.com": ("bounce", 550, "5.1.1")}
    assert as_json(attempts(engine, first)[0]["refused"]) == {
        "Gone@Example.com": [550, "5.1.1 no such user"]
    }

    del smtp.refuse_recipients["gone@example.com"]  # it would accept it now
    only_gone = queue(engine, "gone@example.com")
    both = queue(engine, "bob@example.com", cc=("gone@example.com",))
    make_mailer().run_tick()

    assert status(engine, only_gone) == "suppressed"
    assert attempts(engine, only_gone)[0]["result"] == "suppressed"
    assert status(engine, both) == "sent"
    assert all("gone@example.com" not in r.rcpt_tos for r in smtp.received[1:])
    assert [r.rcpt_tos for r in smtp.received[1:]] == [["bob@example.com"]]
    assert (
        rows(engine, "SELECT total FROM outbox_summary WHERE status = 'suppressed'")[0][
            "total"
        ]
        == 1
    )


@pytest.mark.parametrize(
    "reply",
    ["552 5.2.2 mailbox full", "550 5.7.1 rejected by policy", "450 4.1.1 try later"],
)
def test_only_a_dead_address_is_suppressed(make_mailer, smtp, engine, reply):
    smtp.refuse_recipients["full@example.com"] = reply
    queue(engine, "ann@example.com", cc=("full@example.com",))

    make_mailer().run_tick()

    assert suppressed(engine) == {}


def test_a_hard_bounce_at_data_suppresses_a_single_recipient(make_mailer, smtp, engine):
    row_id = queue(engine, "gone@example.com")
    smtp.fail_next("550 5.1.1 mailbox unknown")

    make_mailer().run_tick()

    assert status(engine, row_id) == "failed"
    assert suppressed(engine) == {"gone@example.com": ("bounce", 550, "5.1.1")}


def test_the_switch_turns_adding_off(make_mailer, smtp, engine):
    smtp.refuse_recipients["gone@example.com"] = "550 5.1.1 no such user"
    queue(engine, "ann@example.com", cc=("gone@example.com",))

    make_mailer(suppress_hard_bounces=False).run_tick()

    assert suppressed(engine) == {}


def test_bypass_sends_to_a_suppressed_address_and_lifts_it(make_mailer, smtp, engine):
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox_suppressions (address, reason)"
                " VALUES ('back@example.com', 'manual')"
            )
        )
    skipped = queue(engine, "back@example.com")
    make_mailer().run_tick()
    assert status(engine, skipped) == "suppressed"

    verify = queue(engine, "back@example.com", bypass_suppression=True)
    make_mailer().run_tick()

    assert status(engine, verify) == "sent"
    assert [r.rcpt_tos for r in smtp.received] == [["back@example.com"]]
    assert suppressed(engine) == {}


def test_a_batch_is_sent_in_priority_order(make_mailer, smtp, engine):
    """Older low-priority rows never jump ahead of newer urgent ones in a batch."""
    late = [queue(engine, f"low{n}@example.com", priority=5) for n in range(6)]
    urgent = [queue(engine, f"high{n}@example.com", priority=0) for n in range(4)]
    by_id = {row_id: "urgent" for row_id in urgent} | dict.fromkeys(late, "late")
    ids = {r["message_id"]: r["id"] for r in rows(engine, "SELECT * FROM outbox")}

    make_mailer(batch_size=8).run_tick()

    order = [by_id[ids[m["Message-ID"]]] for m in smtp.messages]
    assert order == ["urgent"] * 4 + ["late"] * 6
