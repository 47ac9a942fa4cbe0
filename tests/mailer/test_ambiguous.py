"""MAILER_ON_AMBIGUOUS=hold: a send a dead mailer had begun is held, never repeated."""

from __future__ import annotations

import pytest

from mailer_service.completer import backlog_for
from tests.support.admin import outbox
from tests.support.outbox import outbox_rows, seed_outbox, status_counts
from tests.support.processes import wait_until

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
HOLD = {"MAILER_ON_AMBIGUOUS": "hold", "MAILER_CONCURRENCY": "4"}


def settled(engine, count: int):
    """Return a predicate: all ``count`` rows are sent or failed."""

    def check() -> bool:
        """Tell whether nothing is left to deliver."""
        counts = status_counts(engine)
        return counts.get("sent", 0) + counts.get("failed", 0) == count

    return check


@POSTGRES_ONLY
def test_hold_after_kill_9_sends_nothing_twice_and_marks_the_interrupted(
    start_mailer, smtp, engine
):
    ids = seed_outbox(engine, 200)
    smtp.delay = 0.05  # every message is in flight for a while
    victim = start_mailer(MAILER_BATCH_SIZE="20", **HOLD)
    assert wait_until(lambda: len(smtp.messages) >= 20, 60), victim.log()
    victim.kill()  # four sends were under way, some outcomes not yet written

    survivor = start_mailer(**HOLD)
    assert wait_until(settled(engine, len(ids)), 120), survivor.log()
    assert survivor.terminate() == 0

    rows = outbox_rows(engine)
    received = smtp.message_ids()
    assert max(received.values()) == 1, received.most_common(3)  # no duplicate
    held = [r for r in rows if r["status"] == "failed"]
    # At most one interrupted send per connection, plus the sends whose outcome
    # the completer had not yet written (all marked started, none sent twice).
    assert 1 <= len(held) <= 4 + backlog_for(4)
    assert all(r["last_error"].startswith("ambiguous:") for r in held)
    # Every row that was not interrupted mid-send was delivered, exactly once.
    sent = {r["message_id"] for r in rows if r["status"] == "sent"}
    assert sent <= set(received)
    assert len(sent) == len(ids) - len(held)


@POSTGRES_ONLY
def test_an_operator_retry_of_a_held_row_delivers_it(start_mailer, smtp, engine):
    seed_outbox(engine, 40)
    smtp.delay = 0.05
    victim = start_mailer(**HOLD)
    assert wait_until(lambda: len(smtp.messages) >= 4, 60), victim.log()
    victim.kill()
    survivor = start_mailer(**HOLD)
    assert wait_until(settled(engine, 40), 120), survivor.log()
    held = [r["id"] for r in outbox_rows(engine) if r["status"] == "failed"]
    assert held

    result = outbox(engine.url, "retry", *map(str, held))

    assert result.exit_code == 0, result.output
    assert wait_until(lambda: status_counts(engine) == {"sent": 40}, 60)
    assert survivor.terminate() == 0


def test_resend_mode_writes_no_marker(make_mailer, smtp, engine):
    seed_outbox(engine, 5)

    assert make_mailer().run_tick() == 5

    assert [r["send_started_at"] for r in outbox_rows(engine)] == [None] * 5


def test_hold_mode_marks_each_send_before_it_starts(make_mailer, smtp, engine):
    seed_outbox(engine, 3)

    make_mailer(on_ambiguous="hold").run_tick()

    rows = outbox_rows(engine)
    assert [r["status"] for r in rows] == ["sent"] * 3
    assert all(r["send_started_at"] is not None for r in rows)
