"""The one wake-up: rings fold into one until taken."""

from __future__ import annotations

from mailer_service.wakeup import Wakeup


def test_rings_before_a_take_fold_into_one() -> None:
    wakeup = Wakeup()
    for _ in range(1000):
        wakeup.ring()

    assert wakeup.take(timeout=0) is True
    assert wakeup.take(timeout=0) is False  # the thousand rings were one


def test_a_ring_after_a_take_wakes_the_next_one() -> None:
    wakeup = Wakeup()
    wakeup.ring()
    wakeup.take(timeout=0)

    wakeup.ring()  # as during a tick: the next take must not wait

    assert wakeup.take(timeout=0) is True
