"""The aiosmtpd sink in its own process: it takes mail, counts it, fails loudly.

The relay sink runs there so that nothing the benchmark does holds its event
loop back; these check only that it still counts what it claims to count.
"""

from __future__ import annotations

import io
import smtplib
import sys
from pathlib import Path

import pytest

from bench import sink_process, sinks
from bench.sink_process import SinkProcess, serve

SINK_TIMEOUT = 30.0  # seconds; generous, the machine is shared


def _send(port: int) -> None:
    """Send one small message to 127.0.0.1:``port``."""
    with smtplib.SMTP("127.0.0.1", port, timeout=SINK_TIMEOUT) as smtp:
        smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nx")


def test_sink_process_accepts_a_message_and_counts_it(tmp_path: Path) -> None:
    with SinkProcess(log=tmp_path / "sink.log") as sink:
        assert sink.port > 0
        assert sink.count() == 0
        _send(sink.port)
        # The 250 comes after the child recorded the message: no wait needed.
        assert sink.count() == 1
        sink.reset()
        assert sink.count() == 0


def test_sink_process_stops_with_its_block() -> None:
    with SinkProcess() as sink:
        process = sink._process
    assert process is not None and process.poll() is not None


def test_sink_process_fails_loudly_when_the_child_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crash = "import sys; sys.stderr.write('no such module, say'); sys.exit(3)"
    monkeypatch.setattr(SinkProcess, "argv", lambda self: [sys.executable, "-c", crash])
    with pytest.raises(RuntimeError, match="exited") as raised:
        with SinkProcess():
            pass
    assert "no such module, say" in str(raised.value)


def test_sink_process_refuses_a_child_that_does_not_say_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chatter = "print('hello', flush=True); import time; time.sleep(30)"
    monkeypatch.setattr(
        SinkProcess, "argv", lambda self: [sys.executable, "-c", chatter]
    )
    with pytest.raises(RuntimeError, match="not ready"):
        with SinkProcess():
            pass


class FakeCounter:
    """A sink's counter, without a server."""

    def __init__(self, accepted: int) -> None:
        self.accepted = accepted

    def count(self) -> int:
        return self.accepted

    def reset(self) -> None:
        self.accepted = 0


def test_serve_answers_count_and_reset_per_line() -> None:
    answers = io.StringIO()
    serve(FakeCounter(2), io.StringIO("count\nreset\ncount\n"), answers)
    assert answers.getvalue().splitlines() == ["2", "0", "0"]


def test_serve_rejects_an_unknown_command() -> None:
    with pytest.raises(SystemExit, match="unknown command 'stop'"):
        serve(FakeCounter(0), io.StringIO("stop\n"), io.StringIO())


def test_relay_sink_runs_in_its_own_process() -> None:
    relay = sinks.relay_sink()
    assert isinstance(relay, SinkProcess)
    assert relay.data_delay == sinks.RELAY_DELAY
    assert sinks.sink_label(relay) == "aiosmtpd, 50 ms at end of DATA (own process)"


def test_sink_process_main_passes_its_delays_to_the_sink(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    seen: list[tuple[float, float]] = []

    class FakeSink:
        port = 2525

        def __init__(self, delay: float, data_delay: float) -> None:
            seen.append((delay, data_delay))

        def __enter__(self) -> FakeSink:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(sink_process, "SmtpSink", FakeSink)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert sink_process.main(["--data-delay", "0.05", "--delay", "0.5"]) == 0
    assert seen == [(0.5, 0.05)]
    assert capsys.readouterr().out == "ready 2525\n"
