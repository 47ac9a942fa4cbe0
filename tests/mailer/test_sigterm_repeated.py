"""SIGTERM mid-run, many times over: every stop exits 0 and leaves nothing leased.

A stop used to run in a Python signal handler, between any two bytecodes of
the main thread, and under load it could hang for good. Now a thread of its
own takes the signal; this repeats the stop at many points of a busy run.
"""

from __future__ import annotations

import pytest

from tests.support.outbox import outbox_rows, seed_outbox, status_counts
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

STOPS = 12  # mailers started and stopped mid-run, one after another


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_every_sigterm_mid_run_exits_0_and_releases_everything(
    start_mailer, smtp, engine
):
    seed_outbox(engine, 40 * STOPS)
    smtp.delay = 0.01  # messages are in flight when the signal comes
    for stop in range(STOPS):
        before = len(smtp.messages)
        mailer = start_mailer(MAILER_CONCURRENCY="4", MAILER_BATCH_SIZE="10")
        # Stop at a different point each time: after 1 to 12 new deliveries.
        target = before + 1 + stop
        assert wait_until(lambda t=target: len(smtp.messages) >= t, 60), mailer.log()

        assert mailer.terminate() == 0, mailer.log()
        assert status_counts(engine).get("sending", 0) == 0, stop

    sent = {r["message_id"] for r in outbox_rows(engine) if r["status"] == "sent"}
    assert sent == set(smtp.message_ids())  # every accepted mail was recorded
    assert sorted(smtp.message_ids().values()) == [1] * len(sent)
