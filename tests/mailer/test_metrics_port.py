"""A real mailer on MAILER_METRICS_PORT: /metrics counts its work, /healthz its life."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from sqlalchemy import text

from tests.support.metrics import sample
from tests.support.outbox import all_sent, seed_outbox
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.slow

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def get(url: str) -> tuple[int | None, bytes]:
    """Return (status, body) of a GET, or (None, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()
    except OSError:
        return None, b""


def test_mailer_serves_metrics_and_health_on_its_port(start_mailer, smtp, engine):
    port = free_port()
    ids = seed_outbox(engine, 5)
    mailer = start_mailer(MAILER_METRICS_PORT=str(port))
    base = f"http://127.0.0.1:{port}"

    assert wait_until(all_sent(engine, len(ids)), 60), mailer.log()
    assert wait_until(lambda: get(f"{base}/healthz")[0] == 200, 30), mailer.log()

    status, body = get(f"{base}/metrics")
    assert status == 200
    assert sample(body, "mailer_messages_total", result="sent") == 5
    assert sample(body, "mailer_smtp_replies_total", code="250") == 5
    assert sample(body, "outbox_rows", status="sent") == 5
    assert sample(body, "outbox_oldest_due_age_seconds") == 0
    assert mailer.terminate() == 0
    assert f"serving /metrics and /healthz on http://127.0.0.1:{port}" in mailer.log()


def test_mailer_refuses_a_metrics_port_in_use(start_mailer, smtp, database_url):
    port = free_port()
    first = start_mailer(MAILER_METRICS_PORT=str(port))
    assert wait_until(lambda: get(f"http://127.0.0.1:{port}/healthz")[0], 60)

    second = start_mailer(MAILER_METRICS_PORT=str(port))

    assert second.proc.wait(60) == 1
    assert "cannot serve metrics" in second.log()
    assert first.terminate() == 0


@POSTGRES_ONLY
def test_healthz_fails_while_a_lock_wedges_the_tick_and_recovers(
    start_mailer, smtp, engine
):
    """A claim stuck behind a lock finishes nothing: 503 until the lock goes."""
    port = free_port()
    mailer = start_mailer(
        MAILER_METRICS_PORT=str(port), MAIL_TIMEOUT="0.5", MAILER_LEASE_SECONDS="4"
    )
    health = f"http://127.0.0.1:{port}/healthz"
    assert wait_until(lambda: get(health)[0] == 200, 60), mailer.log()

    with engine.connect() as connection:
        connection.execute(text("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE"))
        # 3 rounds of max(poll, 4 x MAIL_TIMEOUT): stalled after 6 s.
        assert wait_until(lambda: get(health)[0] == 503, 30), mailer.log()
        body = json.loads(get(health)[1])
        assert body["status"] == "stalled"
        assert body["stale_after_seconds"] == 6
        connection.rollback()

    assert wait_until(lambda: get(health)[0] == 200, 30), mailer.log()
    assert mailer.alive()
    assert mailer.terminate() == 0
