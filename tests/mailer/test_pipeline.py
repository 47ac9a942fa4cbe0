"""The pipeline's promise: SMTP concurrency costs no database connections.

A real mailer process with MAILER_CONCURRENCY=512 sends to postfix's
smtp-sink, which waits a second before answering each DATA (a slow relay at
no CPU cost), so hundreds of SMTP connections are open at once. Throughout,
the process holds at most three PostgreSQL backends: claimer, completer and
listener.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bench.sinks import PostfixSink, find_smtp_sink
from mailer_service.listener import APPLICATION_NAME as LISTENER
from tests.support.databases import url_string
from tests.support.optional import skip_or_fail
from tests.support.outbox import seed_outbox, status_counts
from tests.support.processes import MailerProcess, wait_until

CONCURRENCY = 512
ROWS = 2 * CONCURRENCY  # two waves of sends at the sink's one second each
APPLICATION = "outbox-pipeline-test"  # how the mailer's backends are told apart
MOST_BACKENDS = 3  # claimer, completer, listener
ESTABLISHED = "01"  # the TCP state in /proc/net/tcp
POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def established_to(port: int) -> int:
    """Count the open TCP connections whose server side is on ``port``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


@POSTGRES_ONLY
def test_a_mailer_at_concurrency_512_holds_at_most_three_backends(
    database_url, engine, tmp_path
):
    binary = find_smtp_sink()
    if binary is None:
        skip_or_fail("postfix's smtp-sink is not installed (apt-get install postfix)")
    seed_outbox(engine, ROWS)
    url = database_url.update_query_dict({"application_name": APPLICATION})
    # The listener names itself; the claimer and completer carry the URL's.
    backends = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database()"
        " AND application_name IN (:name, :listener)"
    )
    peak_backends = peak_smtp = 0
    with PostfixSink(binary, tmp_path, data_wait=1) as sink:
        mailer = MailerProcess(
            tmp_path / "mailer.log",
            DATABASE_URL=url_string(url),
            MAIL_PORT=str(sink.port),
            MAIL_TIMEOUT="10",
            # Of 512 connections opened at once, smtp-sink now and then leaves
            # one unanswered until it times out: retry such a row soon.
            MAILER_BACKOFF_SECONDS="1",
            MAILER_CONCURRENCY=str(CONCURRENCY),
            MAILER_BATCH_SIZE="256",
            MAILER_LEASE_SECONDS="120",
        )

        def sample() -> bool:
            """Note the peaks; tell whether every row is sent."""
            nonlocal peak_backends, peak_smtp
            with engine.connect() as connection:
                now = connection.execute(
                    backends, {"name": APPLICATION, "listener": LISTENER}
                ).scalar()
            peak_backends = max(peak_backends, now or 0)
            peak_smtp = max(peak_smtp, established_to(sink.port))
            assert mailer.alive(), mailer.log()
            return status_counts(engine) == {"sent": ROWS}

        assert wait_until(sample, 180, interval=0.05), mailer.log()
        assert mailer.terminate() == 0, mailer.log()
        delivered = sink.count()

    assert delivered == ROWS
    assert peak_backends == MOST_BACKENDS  # all three were seen, never a fourth
    # Hundreds of sends really were in flight at once: with a second per DATA,
    # that is what delivering every row in time took.
    assert peak_smtp > CONCURRENCY // 2, peak_smtp
