"""Fast checks of the benchmark's parts: its percentile and its seed apps.

The benchmark itself is not a test and asserts nothing about timing; these only
prove that what it measures is what it claims to measure.
"""

from __future__ import annotations

import pytest

from bench.load import percentile
from bench.seed_apps import create_sync_app, create_thread_app
from bench.smtp_sink import SmtpSink

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
