"""The SMTP servers the mailer figures are measured against.

- :class:`PostfixSink` runs postfix's ``smtp-sink``, a C program that accepts
  thousands of messages a second, in its own process: the sink is never the
  bottleneck and shares no GIL with anything we measure. When the binary is
  missing, :func:`open_fast_sink` falls back to the in-process aiosmtpd sink
  and says so.
- :func:`relay_sink` stands for SES/Postmark-like relays: every message costs
  ``RELAY_DELAY`` seconds between the end of DATA and its 250. It is aiosmtpd
  in a process of its own (:mod:`bench.sink_process`): inside the bench's
  process its event loop would wait for the GIL behind whatever the bench
  does, and slow down exactly the concurrency it is there to measure.
- The latency and crash phases' slow and fast sinks (:class:`RecordingSink`)
  are aiosmtpd in processes of their own too, for the same reason: the load
  generator's client threads run in the bench's process beside them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from bench.procs import Child
from bench.sink_process import SinkProcess
from bench.smtp_sink import SmtpSink, free_port

SMTP_SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink")
SMTP_SINK_BACKLOG = 1000  # listen(2) backlog: connections queue, none is refused
READY_TIMEOUT = 30.0  # seconds for smtp-sink to greet; the machine is shared
POLL_SECONDS = 0.05
RELAY_DELAY = 0.05  # seconds a relay spends on each message before its 250

# -c prints "sess=N quit=N mesg=N" after every message and session, each
# overwriting the last with a carriage return; the last one is the total.
_COUNTERS = re.compile(rb"mesg=(\d+)")


class Sink(Protocol):
    """What the phases need of an SMTP server: where it listens, what it took."""

    port: int

    def count(self) -> int:
        """Return how many messages the server has accepted."""
        ...


class RecordingSink(Sink, Protocol):
    """A sink that can also forget, name recipients and wait: the latency phases'."""

    delay: float  # seconds before MAIL FROM is answered

    def reset(self) -> None:
        """Forget the messages accepted so far."""
        ...

    def recipients(self) -> Counter[str]:
        """Count the messages accepted per recipient since the last reset."""
        ...

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` messages were accepted; tell whether they were."""
        ...

    def wait_quiet(self, quiet: float, timeout: float) -> int:
        """Wait until nothing arrives for ``quiet`` seconds; return the count."""
        ...


def find_smtp_sink() -> str | None:
    """Return the path of postfix's smtp-sink, or None when it is not installed."""
    found = shutil.which("smtp-sink")
    if found:
        return found
    return next((path for path in SMTP_SINK_PATHS if os.access(path, os.X_OK)), None)


class PostfixSink:
    """postfix's ``smtp-sink`` on a free 127.0.0.1 port, as a child process."""

    label = "postfix smtp-sink"

    def __init__(self, binary: str, logs: Path, data_wait: int = 0) -> None:
        """Pick a free port; nothing runs until the ``with`` block.

        ``data_wait`` seconds pass before each answer to DATA (``-w``): a slow
        relay, at no CPU cost.
        """
        self.binary = binary
        self.data_wait = data_wait
        self.port = free_port()
        # One log per server: count() reads the counters of this one only.
        self.log = logs / f"smtp-sink-{self.port}.log"
        self._child: Child | None = None

    def argv(self) -> list[str]:
        """Return the command line: counters on, IPv4 loopback, a deep backlog."""
        # smtp-sink refuses to run as root without a user to switch to.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        wait = ["-w", str(self.data_wait)] if self.data_wait else []
        return [
            self.binary,
            "-c",
            *user,
            *wait,
            f"127.0.0.1:{self.port}",
            str(SMTP_SINK_BACKLOG),
        ]

    def __enter__(self) -> PostfixSink:
        """Start smtp-sink and wait for its greeting."""
        self._child = Child("smtp-sink", self.argv(), {}, self.log)
        try:
            self._wait_ready()
        except BaseException:
            self._child.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop smtp-sink."""
        if self._child is not None:
            self._child.stop()

    def _wait_ready(self) -> None:
        """Wait until smtp-sink sends its 220 greeting."""
        assert self._child is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self._child.process.poll() is not None:
                raise RuntimeError(f"smtp-sink exited:\n{self._child.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
                    if sock.recv(64).startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(POLL_SECONDS)

    def count(self) -> int:
        """Return the messages accepted so far, from smtp-sink's own counters."""
        found = _COUNTERS.findall(self.log.read_bytes()[-256:])
        return int(found[-1]) if found else 0


def sink_label(sink: Sink) -> str:
    """Describe ``sink`` for the report."""
    if isinstance(sink, PostfixSink):
        return sink.label
    if isinstance(sink, SinkProcess):
        return f"aiosmtpd, {sink.data_delay * 1000:.0f} ms at end of DATA (own process)"
    if isinstance(sink, SmtpSink) and sink.data_delay:
        return f"aiosmtpd, {sink.data_delay * 1000:.0f} ms at end of DATA"
    return "aiosmtpd (in-process fallback)"


@contextmanager
def open_fast_sink(logs: Path) -> Iterator[Sink]:
    """Run smtp-sink, or the in-process aiosmtpd sink (with a note) without it."""
    binary = find_smtp_sink()
    if binary is None:
        print(
            "note: postfix's smtp-sink is not installed (apt-get install postfix);"
            " the mailer figures use the in-process aiosmtpd sink instead, which"
            " shares a GIL with the benchmark and caps every rate lower",
            file=sys.stderr,
        )
        with SmtpSink() as fallback:
            yield fallback
        return
    with PostfixSink(binary, logs) as sink:
        yield sink


def relay_sink(log: Path | None = None) -> SinkProcess:
    """Return an aiosmtpd sink process that answers each DATA after ``RELAY_DELAY``.

    The wait sits after the final ``.``, not before MAIL FROM: a relay like SES
    or Postmark answers the envelope commands at once and spends its time
    storing (and scanning) the message before the 250 that makes it
    responsible for it. Either place costs a single connection the same per
    message; this one also keeps the message handed over while its sender
    waits, as with a real relay. An async sleep, so connections wait side by
    side and the sink itself never limits concurrency; its own process, so
    the bench's threads never hold its event loop back. ``log`` takes the
    child's stderr.
    """
    return SinkProcess(data_delay=RELAY_DELAY, log=log)
