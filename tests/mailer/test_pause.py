"""The SMTP pause and the prefetch: when the claimer claims, and how much."""

from __future__ import annotations

import time

from mailer_service.claimer import Prefetch, Work
from mailer_service.pause import SmtpPause
from mailer_service.store import ClaimedRow


def test_pause_doubles_with_each_failure_up_to_the_cap() -> None:
    pause = SmtpPause(first=1.0, longest=3.0)
    lengths = []
    for _ in range(4):
        pause.connection_failed("w")
        lengths.append(pause.length)
        pause.until = 0.0  # as if this pause were over

    assert lengths == [1.0, 2.0, 3.0, 3.0]


def test_pause_is_active_until_it_ends() -> None:
    pause = SmtpPause(first=30.0)
    assert not pause.active

    pause.connection_failed("w")

    assert pause.active
    assert pause.until > time.monotonic() + 29


def test_failures_during_a_pause_do_not_lengthen_it() -> None:
    """Several senders see the server die at once: one pause, not one each."""
    pause = SmtpPause(first=5.0)
    for _ in range(8):
        pause.connection_failed("w")

    assert pause.length == 5.0


def test_a_working_connection_resets_the_next_pause() -> None:
    pause = SmtpPause(first=1.0)
    pause.connection_failed("w")
    pause.until = 0.0
    pause.connection_failed("w")
    pause.until = 0.0

    pause.connection_worked()
    pause.connection_failed("w")

    assert pause.length == 1.0


def test_prefetch_wants_rows_only_once_half_of_it_is_free() -> None:
    prefetch = Prefetch(workers=2)
    assert prefetch.room() == 0  # no worker is ready yet: claim nothing
    prefetch.worker_ready(joined=True)
    prefetch.worker_ready(joined=True)
    assert prefetch.room() == 4  # two rows per worker, sending or waiting

    prefetch.put([_work(1), _work(2), _work(3)])
    assert prefetch.room() == 0  # one free place of four: not worth a claim
    prefetch.take()
    prefetch.done()
    assert prefetch.room() == 2


def test_a_closed_prefetch_gives_back_what_no_worker_took() -> None:
    prefetch = Prefetch(workers=1)
    prefetch.worker_ready(joined=True)
    prefetch.put([_work(1), _work(2)])
    taken = prefetch.take()

    left = prefetch.close()

    assert taken is not None and taken.row.id == 1
    assert [w.row.id for w in left] == [2]
    assert prefetch.take() is None  # a worker waiting for rows is let go


def _work(row_id: int) -> Work:
    """Return a claimed row with nothing to attach and nobody suppressed."""
    row = ClaimedRow(row_id, "a@example.com", "s", "b", None, f"<{row_id}@x>", 0)
    return Work(row, [], frozenset())
