"""A PostgreSQL crash under a busy mailer and live signups: what it may cost.

The mailer is frozen (SIGSTOP, by the SMTP server as it takes a message) and
PostgreSQL crashed at once
(``pg_ctl stop -m immediate``), which loses whatever outcomes were committed
asynchronously and not yet flushed. Once it is back, the moment is snapshot:
which messages the SMTP server holds, and which rows the database still has
as ``sent``. The frozen mailer is then killed, so what it had not written is
gone too, and a new one takes over. The messages received whose rows are not
``sent`` are exactly those sent again (``resend``), or exactly those held
for a person and sent again never (``MAILER_ON_AMBIGUOUS=hold``). Signups run
through the crash; every one answered 201 keeps its rows and its mail.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sqlalchemy import text

from tests.support.apps import TEST_APP_ENV
from tests.support.databases import url_string
from tests.support.gunicorn import compose_signup, http
from tests.support.outbox import outbox_rows, seed_outbox
from tests.support.processes import child_env, wait_until

pytestmark = pytest.mark.slow

CONCURRENCY = 4  # SMTP connections of the mailer under test
FREEZE_AT = 200  # the message at which the mailer is frozen
SETTLE = 0.5  # seconds the SMTP server must stay still before the snapshot
SIGNUP_PAUSE = 0.02  # seconds between two signups of the client thread
WELCOMES = text(
    "SELECT u.email, o.status FROM users AS u"
    " LEFT JOIN outbox AS o ON o.dedupe_key = 'welcome:' || u.id"
)


def server_settled(smtp) -> bool:
    """Tell whether the SMTP server took nothing more for SETTLE seconds.

    A message whose bytes all left before the freeze may still be on its way
    through the server: the snapshot waits until nothing moves.
    """
    before = len(smtp.messages)
    time.sleep(SETTLE)
    return smtp.handling == 0 and len(smtp.messages) == before


class Signups(threading.Thread):
    """Signs people up one after another; remembers whom a 201 answered."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.created: list[str] = []
        self.other: list[int | None] = []  # statuses of the refused attempts
        self.stopping = threading.Event()

    def run(self) -> None:
        """Sign up until told to stop."""
        n = 0
        while not self.stopping.is_set():
            email = f"crash-{n}@example.com"
            status, _body = http(f"{self.base}/signup", {"email": email})
            if status == 201:
                self.created.append(email)
            else:
                self.other.append(status)
            n += 1
            time.sleep(SIGNUP_PAUSE)


@pytest.mark.parametrize("mode", ["resend", "hold"])
def test_postgres_crash_repeats_only_unrecorded_sends_and_keeps_every_201(
    cluster, cluster_engine, start_cluster_mailer, smtp, tmp_path, mode
):
    engine = cluster_engine
    seed_outbox(engine, 600)
    smtp.delay = 0.01  # a steady stream of outcomes, some always in flight
    mailer = start_cluster_mailer(
        MAILER_POLL_INTERVAL="0.1",
        MAILER_CONCURRENCY=str(CONCURRENCY),
        MAILER_ON_AMBIGUOUS=mode,
        MAILER_BACKOFF_SECONDS="0.2",
    )
    env = child_env(
        DATABASE_URL=url_string(cluster.url),
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        **TEST_APP_ENV,
    )
    web = compose_signup(env, tmp_path / "web.log")
    signups = Signups(web.base)
    try:
        signups.start()
        # The server freezes the mailer as it takes message FREEZE_AT, before
        # answering it: that send, at least, is received and not recorded.
        frozen = threading.Event()

        def freeze(accepted: int) -> None:
            """SIGSTOP the mailer once, at message FREEZE_AT."""
            if accepted >= FREEZE_AT and not frozen.is_set():
                os.kill(mailer.proc.pid, signal.SIGSTOP)
                frozen.set()

        smtp.on_message = freeze
        assert frozen.wait(60), mailer.log()
        smtp.on_message = None
        cluster.stop("immediate")  # no checkpoint, no flush: a PostgreSQL crash
        assert wait_until(lambda: server_settled(smtp), 30)
        before_crash = len(signups.created)
        cluster.start()
        received = set(smtp.message_ids())
        sent = {r["message_id"] for r in outbox_rows(engine) if r["status"] == "sent"}
        unrecorded = received - sent  # lost by the crash, or not yet written
        mailer.kill()  # frozen, it wrote nothing more: its memory is lost
        survivor = start_cluster_mailer(
            MAILER_POLL_INTERVAL="0.1",
            MAILER_CONCURRENCY=str(CONCURRENCY),
            MAILER_ON_AMBIGUOUS=mode,
            MAILER_BACKOFF_SECONDS="0.2",
        )

        # Signups go on through the crash and after it.
        assert wait_until(lambda: len(signups.created) >= before_crash + 20, 60)
        signups.stopping.set()
        signups.join(60)

        def settled() -> bool:
            """Tell whether every row has its final state."""
            with engine.connect() as connection:
                return not connection.execute(
                    text("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')")
                ).first()

        assert wait_until(settled, 120), survivor.log()
        assert survivor.terminate() == 0
    finally:
        signups.stopping.set()
        assert web.stop() == 0

    counts = smtp.message_ids()
    duplicates = {m for m, n in counts.items() if n > 1}
    rows = outbox_rows(engine)
    assert set(counts) <= {r["message_id"] for r in rows}  # nothing unknown sent
    assert unrecorded  # the sends in flight at the freeze, at least
    if mode == "hold":
        assert not duplicates, duplicates
        # What was sent but unrecorded is held for a person, never resent; so
        # may be a send the freeze cut short (marked started, not received).
        held = {r["message_id"] for r in rows if r["status"] == "failed"}
        assert unrecorded <= held
        assert len(held - unrecorded) <= CONCURRENCY
    else:
        assert duplicates == unrecorded, (
            duplicates - unrecorded,
            unrecorded - duplicates,
        )
        assert {r["status"] for r in rows} == {"sent"}
    # Every signup answered 201, before, during or after the crash, kept its
    # user and its welcome mail, and that mail was delivered (or, in hold
    # mode, held for a person as an ambiguous send).
    with engine.connect() as connection:
        welcomes = dict(connection.execute(WELCOMES).all())
    assert signups.created
    for email in signups.created:
        assert welcomes.get(email) in (
            {"sent"} if mode == "resend" else {"sent", "failed"}
        )
