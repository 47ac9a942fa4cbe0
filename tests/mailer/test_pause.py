"""The SMTP pause and the batch sizer: how much a sender claims, and when."""

from __future__ import annotations

import time

from mailer_service.pause import SmtpPause
from mailer_service.sender import BatchSizer


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


def test_batch_sizer_claims_a_quarter_until_it_has_timed_a_send() -> None:
    assert BatchSizer(20).next_size() == 5
    assert BatchSizer(3).next_size() == 1


def test_batch_sizer_holds_a_quarter_second_of_sending_per_claim() -> None:
    slow, fast = BatchSizer(20), BatchSizer(20)

    slow.observe(5, 0.25)  # 50 ms a message, like a remote relay
    fast.observe(5, 0.005)  # 1 ms a message

    assert slow.next_size() == 5
    assert fast.next_size() == 20  # never more than MAILER_BATCH_SIZE
