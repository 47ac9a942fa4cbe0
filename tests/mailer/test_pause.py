"""The SMTP pause: claims stop after a failed connection, doubling, shared."""

from __future__ import annotations

import time

from mailer_service.pause import SmtpPause


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
