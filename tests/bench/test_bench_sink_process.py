"""The aiosmtpd sink in its own process: it takes mail, counts it, fails loudly.

The relay sink, and the latency and crash phases' slow and fast sinks, run
there so that nothing the benchmark does holds their event loops back; these
check only that each command still answers what it claims to.
"""

from __future__ import annotations

import io
import smtplib
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench import run, sink_process, sinks
from bench.cli import parser
from bench.sink_process import SinkProcess, serve

SINK_TIMEOUT = 30.0  # seconds; generous, the machine is shared


def _send(port: int, to: tuple[str, ...] = ("b@example.com",)) -> None:
    """Send one small message to ``to`` through 127.0.0.1:``port``."""
    with smtplib.SMTP("127.0.0.1", port, timeout=SINK_TIMEOUT) as smtp:
        smtp.sendmail("a@example.com", list(to), b"Subject: hi\r\n\r\nx")


def test_sink_process_accepts_a_message_and_counts_it(tmp_path: Path) -> None:
    with SinkProcess(log=tmp_path / "sink.log") as sink:
        assert sink.port > 0
        assert sink.count() == 0
        _send(sink.port)
        # The 250 comes after the child recorded the message: no wait needed.
        assert sink.count() == 1
        sink.reset()
        assert sink.count() == 0


def test_sink_process_counts_messages_per_recipient(tmp_path: Path) -> None:
    with SinkProcess(log=tmp_path / "sink.log") as sink:
        assert sink.recipients() == Counter()
        _send(sink.port, ("B@example.com", "c@example.com"))
        _send(sink.port, ("b@example.com",))
        assert sink.recipients() == Counter({"b@example.com": 2, "c@example.com": 1})
        sink.reset()
        assert sink.recipients() == Counter()


def test_sink_process_wait_for_tells_whether_the_count_was_reached(
    tmp_path: Path,
) -> None:
    with SinkProcess(log=tmp_path / "sink.log") as sink:
        _send(sink.port)
        assert sink.wait_for(1, timeout=SINK_TIMEOUT) is True
        # Nothing more is sent, so the count can never reach 2.
        assert sink.wait_for(2, timeout=0.2) is False


def test_sink_process_wait_quiet_returns_the_count(tmp_path: Path) -> None:
    with SinkProcess(log=tmp_path / "sink.log") as sink:
        _send(sink.port)
        _send(sink.port)
        assert sink.wait_quiet(quiet=0.1, timeout=SINK_TIMEOUT) == 2


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
    """A sink's tally, without a server."""

    def __init__(self, accepted: int, to: Counter[str] | None = None) -> None:
        self.accepted = accepted
        self.to = to or Counter()

    def count(self) -> int:
        return self.accepted

    def reset(self) -> None:
        self.accepted = 0
        self.to = Counter()

    def recipients(self) -> Counter[str]:
        return self.to


def test_serve_answers_count_and_reset_per_line() -> None:
    answers = io.StringIO()
    serve(FakeCounter(2), io.StringIO("count\nreset\ncount\n"), answers)
    assert answers.getvalue().splitlines() == ["2", "0", "0"]


def test_serve_answers_recipients_as_one_json_line() -> None:
    answers = io.StringIO()
    tally = FakeCounter(3, Counter({"b@example.com": 2, "a\n@example.com": 1}))
    serve(tally, io.StringIO("recipients\nreset\nrecipients\n"), answers)
    assert answers.getvalue().splitlines() == [
        '{"a\\n@example.com": 1, "b@example.com": 2}',
        "0",
        "{}",
    ]


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


def test_open_bench_runs_the_slow_and_fast_sinks_in_their_own_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    @contextmanager
    def no_database(admin_url: str) -> Iterator[str]:
        yield "postgresql://unused"

    @contextmanager
    def no_fast_sink(logs: Path) -> Iterator[object]:
        yield object()

    monkeypatch.setattr(run.database, "fresh_database", no_database)
    monkeypatch.setattr(run, "open_fast_sink", no_fast_sink)
    args = parser().parse_args([])
    with run.open_bench(args) as bench:
        assert isinstance(bench.slow, SinkProcess)
        assert isinstance(bench.fast, SinkProcess)
        assert (bench.slow.delay, bench.fast.delay) == (run.SLOW_SMTP_SECONDS, 0.0)
        _send(bench.fast.port)
        assert (bench.slow.count(), bench.fast.count()) == (0, 1)


def test_cli_only_runs_the_latency_phase_alone() -> None:
    args = parser().parse_args(["--only", "latency", "--requests", "40"])
    assert (args.only, args.requests) == ("latency", 40)
    assert run.ALONE["latency"] is run._latency_alone
