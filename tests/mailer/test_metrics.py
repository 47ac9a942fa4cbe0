"""The mailer's metrics count what the mailer does, and its HTTP port serves them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool
from werkzeug.test import Client

from mailer_service.config import MailerSettings
from mailer_service.web import MetricsApp, metrics_address, stale_after
from outbox_contract.metrics import QueueCollector, RegistryView, queue_registry
from outbox_contract.settings import ConfigError
from tests.support.admin import seed
from tests.support.metrics import Delta, sample
from tests.support.outbox import outbox_rows, seed_outbox, set_timestamp
from tests.support.promtool import check_metrics


class FakeProgress:
    """Stands in for metrics.Progress: a fixed time since the last progress."""

    def __init__(self, idle: float) -> None:
        self.idle = idle

    def seconds_since(self) -> float:
        """Return the configured idle time."""
        return self.idle


def messages(result: str) -> tuple[str, dict[str, str]]:
    """Name the mailer_messages_total sample of ``result``."""
    return ("mailer_messages_total", {"result": result})


def replies(code: str) -> tuple[str, dict[str, str]]:
    """Name the mailer_smtp_replies_total sample of ``code``."""
    return ("mailer_smtp_replies_total", {"code": code})


def count(name: str) -> tuple[str, dict[str, str]]:
    """Name a sample without labels."""
    return (name, {})


def test_metrics_count_attempts_by_result_and_reply_code(make_mailer, smtp, engine):
    seed_outbox(engine, 3)
    smtp.fail_next("451 4.7.1 greylisted", "550 5.1.1 <r1@example.com> no such user")
    delta = Delta(
        messages("sent"),
        messages("retry"),
        messages("failed"),
        replies("250"),
        replies("451"),
        replies("550"),
        count("mailer_smtp_send_duration_seconds_count"),
        count("mailer_commit_to_accepted_seconds_count"),
    )
    claims = Delta(
        count("mailer_claim_duration_seconds_count"),
        ("mailer_claims_total", {"found": "rows"}),
        ("mailer_claims_total", {"found": "empty"}),
    )

    make_mailer().run_tick()

    assert delta() == [1, 1, 1, 1, 1, 1, 3, 1]
    timed, found_rows, found_none = claims()
    assert found_rows >= 1
    assert timed == found_rows + found_none  # every claim is counted once
    empty = Delta(("mailer_claims_total", {"found": "empty"}))
    make_mailer().run_tick()  # nothing is due now (the retry waits out its backoff)
    assert empty() == [1]
    assert sorted(r["status"] for r in outbox_rows(engine)) == [
        "failed",
        "pending",
        "sent",
    ]


def test_commit_to_accepted_counts_from_the_rows_insert(make_mailer, smtp, engine):
    """An hour-old row is observed an hour late, by the database's own clock."""
    seed_outbox(engine, 1)
    set_timestamp(engine, "created_at", datetime.now(UTC) - timedelta(hours=1))
    delta = Delta(count("mailer_commit_to_accepted_seconds_sum"))

    make_mailer().run_tick()

    [waited] = delta()
    assert 3600 - 2 <= waited <= 3600 + 60


def test_metrics_count_a_dropped_connection_its_release_and_the_pause(
    make_mailer, smtp, engine
):
    seed_outbox(engine, 3)
    smtp.fail_next("drop")
    delta = Delta(
        messages("retry"),
        replies("none"),
        count("mailer_rows_released_total"),
        count("mailer_smtp_pauses_total"),
    )

    # The one SMTP worker's prefetch is two rows: the one it tried, and one
    # handed back unattempted when the dropped connection paused the mailer.
    make_mailer(batch_size=12).run_tick()

    assert delta() == [1, 1, 1, 1]


def test_metrics_count_lease_renewals(make_mailer, smtp, engine):
    seed_outbox(engine, 3)
    smtp.delay = 0.15  # each send spends most of the 0.2 s lease
    delta = Delta(count("mailer_lease_renewals_total"))

    make_mailer(lease_seconds=0.2).run_tick()

    assert delta()[0] >= 1


def test_metrics_count_an_outcome_fenced_out(make_mailer, smtp, engine):
    """Another worker takes the row mid-send: the write is refused and counted."""
    seed_outbox(engine, 1)

    def steal(_accepted: int) -> None:
        """Hand the row to another worker while the server holds DATA."""
        with engine.begin() as connection:
            connection.execute(text("UPDATE outbox SET locked_by = 'thief'"))

    smtp.on_message = steal
    delta = Delta(count("mailer_fenced_out_writes_total"), messages("sent"))

    make_mailer().run_tick()

    assert delta() == [1, 1]  # the server did accept it, once


def test_metrics_count_a_tick_ended_by_a_database_error(make_mailer, smtp, engine):
    with engine.begin() as connection:
        connection.execute(text("DROP VIEW outbox_summary"))
        connection.execute(text("ALTER TABLE outbox RENAME TO outbox_gone"))
    delta = Delta(count("mailer_database_errors_total"))

    assert make_mailer().run_tick() == 0

    assert delta() == [1]


def test_queue_collector_reports_the_summary_view(database_url, engine):
    seed(engine)  # 2 pending (1 due two hours ago), 1 sending, 6 sent, 2 failed
    registry = CollectorRegistry()
    registry.register(QueueCollector(engine))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert [value("outbox_rows", status=s) for s in ("pending", "sending")] == [2, 1]
    assert [value("outbox_rows", status=s) for s in ("sent", "failed")] == [6, 2]
    assert 7200 - 2 <= value("outbox_oldest_due_age_seconds") <= 7200 + 60
    assert value("outbox_database_up") == 1


def test_queue_collector_reports_zero_age_when_nothing_is_due(database_url, engine):
    registry = CollectorRegistry()
    registry.register(QueueCollector(engine))

    assert registry.get_sample_value("outbox_oldest_due_age_seconds") == 0
    assert registry.get_sample_value("outbox_rows", {"status": "pending"}) == 0


def test_queue_collector_reports_a_failed_query_as_database_down(tmp_path, caplog):
    """No outbox_summary (say, unmigrated): database_up is 0 and the scrape works."""
    engine = create_engine(
        URL.create("sqlite", database=str(tmp_path / "empty.db")), poolclass=NullPool
    )
    registry = CollectorRegistry()
    registry.register(QueueCollector(engine))

    assert registry.get_sample_value("outbox_database_up") == 0
    assert registry.get_sample_value("outbox_rows", {"status": "sent"}) is None
    assert "outbox_summary query failed" in caplog.text
    engine.dispose()


def test_metrics_app_serves_an_exposition_promtool_accepts(make_mailer, smtp, engine):
    seed_outbox(engine, 2)
    smtp.fail_next("451 later")
    make_mailer().run_tick()
    app = MetricsApp(queue_registry(engine), FakeProgress(0.0), 10.0)

    response = Client(app).get("/metrics")

    assert response.status_code == 200
    assert sample(response.data, "outbox_rows", status="sent") == 1
    assert sample(response.data, "outbox_rows", status="pending") == 1
    lint = check_metrics(response.data)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_metrics_app_exposes_every_mailer_metric_and_lints_clean(make_mailer, engine):
    """The process registry, as the mailer serves it: names follow conventions."""
    make_mailer().run_tick()
    app = MetricsApp(
        queue_registry(engine, RegistryView(REGISTRY)), FakeProgress(0.0), 10.0
    )

    response = Client(app).get("/metrics")

    assert sample(response.data, "mailer_messages_total", result="failed") is not None
    assert sample(response.data, "mailer_smtp_paused") is not None
    lint = check_metrics(response.data)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize(("idle", "status"), [(5.0, 200), (31.0, 503)])
def test_healthz_fails_once_progress_is_older_than_the_limit(idle, status):
    app = MetricsApp(CollectorRegistry(), FakeProgress(idle), 30.0)

    response = Client(app).get("/healthz")

    assert response.status_code == status
    body = json.loads(response.data)
    assert body["status"] == ("ok" if status == 200 else "stalled")
    assert body["stale_after_seconds"] == 30.0


def test_metrics_app_answers_404_elsewhere():
    app = MetricsApp(CollectorRegistry(), FakeProgress(0.0), 30.0)

    assert Client(app).get("/").status_code == 404


def test_stale_after_allows_one_slow_send_per_round():
    """Three rounds of the longer of a poll and one worst-case send (4 x timeout)."""
    assert stale_after(MailerSettings(mail_timeout=10, poll_interval=1)) == 120
    assert stale_after(MailerSettings(mail_timeout=0.1, poll_interval=5)) == 15


def test_metrics_address_is_off_unless_a_port_is_set():
    assert metrics_address({}) is None
    assert metrics_address({"MAILER_METRICS_PORT": "9101"}) == ("127.0.0.1", 9101)
    assert metrics_address(
        {"MAILER_METRICS_PORT": "9101", "MAILER_METRICS_HOST": "0.0.0.0"}
    ) == ("0.0.0.0", 9101)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAILER_METRICS_PORT": "http"}, "MAILER_METRICS_PORT must be an integer"),
        ({"MAILER_METRICS_PORT": "70000"}, "MAILER_METRICS_PORT must be at most"),
        ({"MAILER_METRICS_HOST": "0.0.0.0"}, "MAILER_METRICS_PORT is not"),
    ],
)
def test_metrics_address_rejects_bad_values(env, message):
    with pytest.raises(ConfigError, match=message):
        metrics_address(env)
