"""Fast checks of the benchmark's parts: percentiles, apps, loops and sinks.

The benchmark itself is not a test and asserts nothing about timing; these only
prove that what it measures is what it claims to measure.
"""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest
from sqlalchemy import URL

from bench import attachments, flask_mail_send, pg, raw_send, sinks
from bench.floor_app import create_app as create_floor_app
from bench.load import percentile
from bench.messages import LoopTimes
from bench.pipeline import PipelineDrain, pipeline_section
from bench.producers import ProducerFigures, producers_section
from bench.seed_apps import create_sync_app, create_thread_app
from bench.sinks import RELAY_DELAY, PostfixSink, find_smtp_sink, relay_sink
from bench.smtp_sink import SmtpSink
from outbox_contract import Attachment
from tests.conftest import url_string
from tests.support.optional import skip_or_fail

SINK_TIMEOUT = 30.0  # seconds; generous, the machine is shared


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(101)), 99) == 99


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_rejects_empty_or_out_of_range(
    values: list[float], q: float
) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


@pytest.mark.parametrize("factory", [create_sync_app, create_thread_app])
def test_seed_app_delivers_the_welcome_mail(
    factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink:
        monkeypatch.setenv("MAIL_SERVER", "127.0.0.1")
        monkeypatch.setenv("MAIL_PORT", str(sink.port))
        client = factory().test_client()
        response = client.post("/signup", data={"email": "ada@example.com"})
        assert response.status_code == 200
        assert sink.wait_for(1, timeout=SINK_TIMEOUT)
        assert sink.recipients() == {"ada@example.com": 1}
        assert sink.message_ids().total() == 1


def test_seed_sync_app_fails_the_request_when_smtp_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with SmtpSink() as sink:
        port = sink.port
    # The sink is stopped: nothing listens on its port any more.
    monkeypatch.setenv("MAIL_PORT", str(port))
    client = create_sync_app().test_client()
    # The user waits on SMTP, so an SMTP outage is the user's error page.
    response = client.post("/signup", data={"email": "ada@example.com"})
    assert response.status_code == 500


def test_raw_loop_delivers_every_prebuilt_message() -> None:
    with SmtpSink() as sink:
        times = raw_send.send_all(sink.port, raw_send.build_messages(5, "raw"))
        assert times.sent == 5
        assert sink.wait_for(5, timeout=SINK_TIMEOUT)
        assert sink.message_ids() == {f"<raw-{i}@example.com>": 1 for i in range(5)}


def test_flask_mail_loop_delivers_n_messages_with_their_fixed_ids() -> None:
    with SmtpSink(keep_content=True) as sink:
        app = flask_mail_send.create_app(sink.port)
        times = flask_mail_send.send_all(app, 5, "fm")
        assert times.sent == 5
        assert sink.wait_for(5, timeout=SINK_TIMEOUT)
        assert sink.message_ids() == {f"<fm-{i}@example.com>": 1 for i in range(5)}
        # msgId replaces Flask-Mail's own Message-ID instead of adding a second.
        for message in sink.received():
            assert message.content is not None
            assert message.content.count(b"Message-ID:") == 1


def test_loop_times_round_trip_through_json() -> None:
    times = LoopTimes(sent=11, first=1.0, last=3.0)
    assert LoopTimes.from_json(times.to_json()) == times
    assert times.per_second == 5.5
    assert LoopTimes(sent=1, first=1.0, last=1.0).per_second == 0.0


def test_smtp_sink_wrapper_accepts_a_message(tmp_path: Path) -> None:
    binary = find_smtp_sink()
    if binary is None:
        skip_or_fail("postfix's smtp-sink is not installed (apt-get install postfix)")
    with PostfixSink(binary, tmp_path) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=SINK_TIMEOUT) as smtp:
            smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nx")
        deadline = time.monotonic() + SINK_TIMEOUT
        while sink.count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.count() == 1


def test_relay_sink_answers_data_after_its_delay() -> None:
    with relay_sink() as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=SINK_TIMEOUT) as smtp:
            started = time.perf_counter()
            smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nx")
            took = time.perf_counter() - started
        # A lower bound only: the sleep guarantees it, whatever the machine's load.
        assert took >= RELAY_DELAY
        assert sink.count() == 1


def test_floor_app_writes_user_and_email_in_one_transaction(pg_url: URL) -> None:
    app = create_floor_app(url_string(pg_url))
    try:
        client = app.test_client()
        response = client.post("/signup", data={"email": "Ada@Example.com"})
        assert response.status_code == 201
        # A second signup with the same address fails on users: no email row.
        assert (
            client.post("/signup", data={"email": "ada@example.com"}).status_code == 500
        )
    finally:
        app.extensions["floor_connections"].close_all()
    with pg.connect(url_string(pg_url)) as connection:
        users = connection.execute("SELECT id, email, xmin FROM users").fetchall()
        emails = connection.execute(
            "SELECT dedupe_key, recipient, message_id, xmin FROM outbox"
        ).fetchall()
    assert len(users) == 1 and len(emails) == 1
    (user_id, email, user_xmin), (owner, recipient, message_id, email_xmin) = (
        users[0],
        emails[0],
    )
    assert (email, recipient) == ("ada@example.com", "ada@example.com")
    assert owner == f"welcome:{user_id}"
    assert message_id.startswith("<") and message_id.endswith("@example.com>")
    # The same xmin: both rows were written by one transaction.
    assert user_xmin == email_xmin


def test_fast_sink_falls_back_to_aiosmtpd_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(sinks, "find_smtp_sink", lambda: None)
    with sinks.open_fast_sink(tmp_path) as sink:
        assert isinstance(sink, SmtpSink)
        assert sinks.sink_label(sink) == "aiosmtpd (in-process fallback)"
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=SINK_TIMEOUT) as smtp:
            smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nx")
        assert sink.count() == 1
    assert "smtp-sink is not installed" in capsys.readouterr().err


def test_attachment_fill_queues_the_same_rows_with_one_attachment_each(
    pg_url: URL,
) -> None:
    url = url_string(pg_url)
    part = Attachment(content=b"%PDF" * 8, content_type="application/pdf")
    attachments.filler(None)(url, ["p0@example.com", "p1@example.com"])
    attachments.filler(part)(url, ["a0@example.com", "a1@example.com"])
    with pg.connect(url) as connection:
        rows = connection.execute(
            "SELECT recipient, message->>'attachments', body_html IS NOT NULL"
            " FROM outbox ORDER BY id"
        ).fetchall()
        parts = connection.execute(
            "SELECT outbox_id, content_type, length(content) FROM outbox_attachments"
            " ORDER BY outbox_id"
        ).fetchall()
    assert rows == [
        ("p0@example.com", "0", True),
        ("p1@example.com", "0", True),
        ("a0@example.com", "1", True),
        ("a1@example.com", "1", True),
    ]
    assert parts == [(3, "application/pdf", 32), (4, "application/pdf", 32)]
    assert attachments.attachments_size(url) > 0


def test_pipeline_section_compares_each_drain_with_littles_law() -> None:
    drain = PipelineDrain(
        server="smtp-sink",
        concurrency=64,
        rows=256,
        span=4.0,
        attempts=260,
        peak_backends=3,
        latency=1.6,
        steady_span=3.2,
    )

    [row] = [line for line in pipeline_section([drain]) if "| 64 |" in line]

    # 256 rows in 4 s = 64/s; the middle 80% (204.8 rows) in 3.2 s = 64/s,
    # against 64 ÷ 1 s nominal and 64 ÷ 1.6 s = 40/s; 4 sends retried.
    assert row == (
        "| smtp-sink | 64 | 256 | 1.60 | 64 | 64 | 64 | 100% | 40 | 160% | 4 | 3 |"
    )


def test_pipeline_share_of_a_drain_without_a_span_is_a_dash() -> None:
    drain = PipelineDrain("aiosmtpd", 16, 0, 0.0, 0, 3, 0.0)

    [row] = [line for line in pipeline_section([drain]) if "| 16 |" in line]

    assert row == "| aiosmtpd | 16 | 0 | 0.00 | 0 | 0 | 160 | 0% | 0 | - | 0 | 3 |"


def test_producers_section_compares_the_best_runs() -> None:
    figures = ProducerFigures(on=[900.0, 1800.0], off=[1000.0, 2000.0])

    text = "\n".join(producers_section(figures))

    assert "| wake-up on | 900, 1,800 | 1,800 |" in text
    assert "runs at 90% of wake-up off" in text
    assert producers_section(None) == []
