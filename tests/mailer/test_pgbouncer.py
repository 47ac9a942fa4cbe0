"""PgBouncer in transaction pooling mode: signups and a mailer work through it.

Through the pooler, psycopg's prepared statements would collide between
clients (DuplicatePreparedStatement after the fifth execution), a start-up
``options`` parameter is refused, and LISTEN cannot work; so the mailer's
listener connects straight to PostgreSQL (MAILER_LISTEN_URL).
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from tests.mailer.conftest import mailers_on
from tests.support.databases import url_string
from tests.support.outbox import all_sent
from tests.support.pgbouncer import pgbouncer
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

SIGNUPS = 12  # more than psycopg's prepare threshold of 5 executions


def sign_up(client, prefix: str, count: int) -> list[int]:
    """Sign up ``count`` users through the app; return the answers' statuses."""
    return [
        client.post("/signup", json={"email": f"{prefix}{n}@example.com"}).status_code
        for n in range(count)
    ]


def test_signups_and_a_mailer_work_through_pgbouncer(
    pg_url, make_app_for, smtp, tmp_path
):
    direct = create_engine(pg_url, poolclass=NullPool)
    with pgbouncer(pg_url) as pooled, mailers_on(pooled, smtp, tmp_path) as start:
        client = make_app_for(pooled).test_client()
        assert sign_up(client, "early", SIGNUPS) == [201] * SIGNUPS
        mailer = start(
            MAILER_LISTEN_URL=url_string(pg_url),
            MAILER_POLL_INTERVAL="3600",  # only a wake-up can deliver after start
            MAILER_CONCURRENCY="4",
        )
        assert wait_until(all_sent(direct, SIGNUPS), 120), mailer.log()
        assert wait_until(lambda: "listening for new outbox rows" in mailer.log(), 60)

        assert sign_up(client, "late", SIGNUPS) == [201] * SIGNUPS
        assert wait_until(all_sent(direct, 2 * SIGNUPS), 120), mailer.log()
        assert mailer.terminate() == 0

    direct.dispose()
    log = mailer.log()
    assert "DuplicatePreparedStatement" not in log
    assert "refused start-up options" in log  # and it went on without them
    assert sorted(smtp.message_ids().values()) == [1] * (2 * SIGNUPS)
