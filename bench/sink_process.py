"""The aiosmtpd sink in a process of its own, so it shares no GIL with the bench.

``python -m bench.sink_process --data-delay 0.05`` runs a
:class:`bench.smtp_sink.SmtpSink`, prints ``ready PORT`` and then answers
one line per command read on stdin: ``count`` (messages accepted since the
last reset), ``reset`` (forget them; answers ``0``) and ``recipients`` (a
JSON object, address to messages, since the last reset). End of stdin stops
it.

:class:`SinkProcess` is the parent's side, with the ``Sink`` protocol and the
rest of what the latency and crash phases ask of a sink: ``reset()``,
``recipients()``, and ``wait_for()``/``wait_quiet()``, which poll ``count``
from the parent so the child stays a loop of one-line answers. An in-process
sink measured the bench itself: its event loop ran only when the bench's
threads let go of the GIL, so a busy bench made every connection to it wait
in line (docs/testing.md).
"""

from __future__ import annotations

import argparse
import json
import select
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import IO, Protocol

from bench.procs import ROOT, STOP_TIMEOUT
from bench.smtp_sink import SmtpSink, wait_for_count, wait_until_quiet

READY_TIMEOUT = 30.0  # seconds for the child to import aiosmtpd and listen
ANSWER_TIMEOUT = 30.0  # seconds for one answer; the machine is shared


class SinkProcess:
    """``python -m bench.sink_process`` as a child: its port, count and recipients."""

    def __init__(
        self, data_delay: float = 0.0, delay: float = 0.0, log: Path | None = None
    ) -> None:
        """Remember the settings; nothing runs until the ``with`` block.

        The child's stderr goes to ``log``, or to a temporary file without one:
        never to a pipe nobody reads, which would stall the sink once full.
        """
        self.log = log
        self.data_delay = data_delay  # seconds between the end of DATA and its 250
        self.delay = delay  # seconds before MAIL FROM is answered
        self.port = 0  # known once the child reports it
        self._lock = threading.Lock()  # one command and its answer at a time
        self._process: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None

    def argv(self) -> list[str]:
        """Return the child's command line."""
        return [
            sys.executable,
            "-m",
            "bench.sink_process",
            "--data-delay",
            str(self.data_delay),
            "--delay",
            str(self.delay),
        ]

    def __enter__(self) -> SinkProcess:
        """Start the child and wait for its ``ready PORT`` line."""
        self._errors = self.log.open("a+b") if self.log else tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                self.argv(),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
                start_new_session=True,
            )
            word, _, port = self._read_line(READY_TIMEOUT).partition(" ")
            if word != "ready" or not port.isdigit():
                raise RuntimeError(f"sink process not ready: {word!r}\n{self._tail()}")
            self.port = int(port)
        except BaseException:
            if self._process is not None:
                self._process.kill()  # no sink to stop gracefully
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the child's stdin, which stops it; kill it if it lingers."""
        self._stop()

    def count(self) -> int:
        """Return how many messages the child accepted since the last reset."""
        return int(self._ask("count"))

    def reset(self) -> None:
        """Make the child forget what it accepted so far."""
        self._ask("reset")

    def recipients(self) -> Counter[str]:
        """Count the messages the child accepted per recipient since the last reset."""
        return Counter(json.loads(self._ask("recipients")))

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` messages were accepted; tell whether they were."""
        return wait_for_count(self.count, count, timeout)

    def wait_quiet(self, quiet: float, timeout: float) -> int:
        """Wait until nothing arrives for ``quiet`` seconds; return the count."""
        return wait_until_quiet(self.count, quiet, timeout)

    def _ask(self, command: str) -> str:
        """Send one command line; return the child's one-line answer."""
        with self._lock:
            process = self._running()
            assert process.stdin is not None
            process.stdin.write(f"{command}\n".encode())
            process.stdin.flush()
            return self._read_line(ANSWER_TIMEOUT)

    def _read_line(self, timeout: float) -> str:
        """Read one line of the child's stdout, or fail with its stderr."""
        process = self._running()
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else b""
        if not line.endswith(b"\n"):
            if line == b"" and ready:  # end of file: the child is exiting
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            why = "exited" if process.poll() is not None else "did not answer"
            raise RuntimeError(f"sink process {why}:\n{self._tail()}")
        return line.decode().strip()

    def _running(self) -> subprocess.Popen[bytes]:
        """Return the child, which must have been started."""
        if self._process is None:
            raise RuntimeError("the sink process was not started")
        return self._process

    def _stop(self) -> None:
        """Close stdin, wait STOP_TIMEOUT, then SIGKILL."""
        process = self._process
        if process is None:
            if self._errors is not None:
                self._errors.close()
            return
        if process.stdin is not None and not process.stdin.closed:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass  # the child is gone already
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if self._errors is not None:
            self._errors.close()

    def _tail(self, lines: int = 20) -> str:
        """Return the last lines of the child's stderr."""
        if self._errors is None or self._errors.closed:
            return ""
        self._errors.flush()
        self._errors.seek(0)
        text = self._errors.read().decode(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Tally(Protocol):
    """What :func:`serve` needs of a sink."""

    def count(self) -> int:
        """Return how many messages were accepted since the last reset."""
        ...

    def reset(self) -> None:
        """Forget the messages accepted so far."""
        ...

    def recipients(self) -> Counter[str]:
        """Count the messages accepted per recipient since the last reset."""
        ...


def answer(sink: Tally, command: str) -> str:
    """Return the one-line answer to ``command``."""
    if command == "recipients":
        # JSON escapes any newline, so the answer stays one line.
        return json.dumps(dict(sink.recipients()), sort_keys=True)
    if command == "reset":
        sink.reset()
    elif command != "count":
        raise SystemExit(f"unknown command {command!r}")
    return str(sink.count())


def serve(sink: Tally, commands: IO[str], answers: IO[str]) -> None:
    """Answer ``count``, ``reset`` and ``recipients`` lines until ``commands`` ends."""
    for line in commands:
        print(answer(sink, line.strip()), file=answers, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the sink until stdin ends."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-delay", type=float, default=0.0, help="seconds")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds")
    args = parser.parse_args(argv)
    with SmtpSink(delay=args.delay, data_delay=args.data_delay) as sink:
        print(f"ready {sink.port}", flush=True)
        serve(sink, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
