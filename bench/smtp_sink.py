"""An in-process SMTP sink (aiosmtpd) that can answer slowly and counts what it took.

The delay is an ``await asyncio.sleep`` in the MAIL FROM hook, before its 250:
an async sleep, so hundreds of concurrent connections wait side by side
instead of queueing behind one another. It sits *before* the message body is
sent, as network round trips and TLS do for a remote server, so a sender that
dies while waiting has not handed its message over yet.

``data_delay`` is the other place a server can be slow: after the final ``.``
of DATA, before its 250. That is where a relay such as SES or Postmark spends
its time (it stores the message durably before accepting it), so the
``bench.sinks`` relay stand-in uses it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

POLL_SECONDS = 0.05  # how often the waits below look at the count


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_count(count: Callable[[], int], want: int, timeout: float) -> bool:
    """Poll ``count()`` until it reaches ``want``; tell whether it did in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count() >= want:
            return True
        time.sleep(POLL_SECONDS)
    return count() >= want


def wait_until_quiet(count: Callable[[], int], quiet: float, timeout: float) -> int:
    """Poll ``count()`` until it holds still ``quiet`` seconds; return it."""
    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


@dataclass(frozen=True)
class Received:
    """One accepted message: when, its Message-ID, its recipients, maybe its bytes."""

    at: float  # time.monotonic() when the 250 for DATA was decided
    message_id: str
    recipients: tuple[str, ...]
    mail_from: str
    content: bytes | None


class _Handler:
    """aiosmtpd hooks: a slow MAIL FROM, then record every accepted DATA."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink
        self.parser = BytesHeaderParser()

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """Wait the configured delay, then accept the sender as aiosmtpd would."""
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Wait the configured DATA delay, then record the message and accept it."""
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        content = envelope.original_content or b""
        headers = self.parser.parsebytes(content)
        self.sink.record(
            Received(
                at=time.monotonic(),
                message_id=str(headers.get("Message-ID", "")),
                recipients=tuple(r.lower() for r in envelope.rcpt_tos),
                mail_from=str(envelope.mail_from),
                content=content if self.sink.keep_content else None,
            )
        )
        return "250 OK"


class SmtpSink:
    """An SMTP server on 127.0.0.1 that answers MAIL FROM after ``delay`` seconds."""

    def __init__(
        self, delay: float = 0.0, keep_content: bool = False, data_delay: float = 0.0
    ) -> None:
        self.delay = delay  # seconds before MAIL FROM is answered
        self.data_delay = data_delay  # seconds between the end of DATA and its 250
        self.keep_content = keep_content
        self.port = free_port()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        # server_hostname spares aiosmtpd a reverse DNS lookup at start-up.
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="bench-sink.localhost",
        )

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def record(self, message: Received) -> None:
        """Store one accepted message (called on the server's loop)."""
        with self._lock:
            self._received.append(message)

    def reset(self) -> None:
        """Forget everything received so far: a new phase starts."""
        with self._lock:
            self._received.clear()

    def received(self) -> list[Received]:
        """Return a snapshot of the messages accepted since the last reset."""
        with self._lock:
            return list(self._received)

    def count(self) -> int:
        """Return how many messages were accepted since the last reset."""
        with self._lock:
            return len(self._received)

    def recipients(self) -> Counter[str]:
        """Count accepted messages per recipient address."""
        return Counter(r for m in self.received() for r in m.recipients)

    def message_ids(self) -> Counter[str]:
        """Count accepted messages per Message-ID."""
        return Counter(m.message_id for m in self.received())

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` messages were accepted; tell whether they were."""
        return wait_for_count(self.count, count, timeout)

    def wait_quiet(self, quiet: float, timeout: float) -> int:
        """Wait until nothing arrives for ``quiet`` seconds; return the count."""
        return wait_until_quiet(self.count, quiet, timeout)

    def delivery_rate(self) -> float:
        """Messages per second between the first and the last accepted message."""
        times = sorted(m.at for m in self.received())
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])
