"""A real SMTP server for tests (aiosmtpd), with faults on demand.

``SmtpServer`` records every accepted message and can be told to answer the
next messages with a 4xx or 5xx, to drop the connection, or to stall, or to
hold every DATA until several are in DATA at once (``hold_data``). A
``HangingServer`` accepts connections and never says a word.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.processes import free_port


@dataclass
class DataGate:
    """Holds each DATA's answer until ``count`` are in DATA at once, or a timeout.

    Once open it stays open. ``reached`` tells whether it opened because that
    many were there together, rather than because ``timeout`` ran out.
    """

    count: int
    timeout: float  # seconds from the first DATA it holds
    opened: bool = False
    reached: bool = False
    deadline: float | None = None  # monotonic; set by the first DATA held


@dataclass(frozen=True)
class Received:
    """One DATA as it came off the wire, accepted or not: envelope and bytes."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class _Handler:
    """aiosmtpd handler: stores messages, or answers with the queued fault."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self,
        smtp: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept a recipient, or refuse it as ``refuse_recipients`` says."""
        reply = self.server.refuse_recipients.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, smtp: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Accept the message, or apply the next planned fault."""
        self.server.handling_changed(+1)
        try:
            return await self._answer_data(smtp, session, envelope)
        finally:
            self.server.handling_changed(-1)

    async def _answer_data(
        self, smtp: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Record the DATA, wait as told, then accept it or apply the fault."""
        with self.server.lock:
            self.server.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
        if self.server.on_message is not None:
            self.server.on_message(len(self.server.messages))
        self.server.sending_started(session.peer)
        try:
            await self.server.pass_gate()
            if self.server.delay:
                await asyncio.sleep(self.server.delay)
        finally:
            self.server.sending_ended()
        fault = self.server.next_fault()
        if fault == "drop":
            smtp.transport.abort()
            return "421 dropped"
        if fault == "stall":
            time.sleep(
                self.server.stall_seconds
            )  # blocks this server's loop on purpose
            return "451 stalled"
        if fault not in (None, "ok"):
            return fault
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.server.lock:
            self.server.messages.append(message)
            self.server.accepted_at.append(time.monotonic())
        return "250 OK"


class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, telling the server when connections come and go."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count a new client connection."""
        super().connection_made(transport)
        self.event_handler.server.connections_changed(+1)

    def connection_lost(self, exc: Exception | None) -> None:
        """Count a closed client connection."""
        super().connection_lost(exc)
        self.event_handler.server.connections_changed(-1)


class _CountingController(Controller):
    """A controller whose connections are counted."""

    def factory(self) -> SMTP:
        """Build the counting protocol instead of the plain one."""
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """An in-process SMTP server on 127.0.0.1 with fault injection."""

    def __init__(self, **controller_options: object) -> None:
        """``controller_options`` go to aiosmtpd's Controller, e.g. authentication."""
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.faults: list[str] = []
        # Every DATA, faulted ones too, with its envelope and raw bytes.
        self.received: list[Received] = []
        # Address (lower-case) -> the reply its RCPT TO gets, e.g. "550 5.1.1 ...".
        self.refuse_recipients: dict[str, str] = {}
        self.stall_seconds = 0.0
        self.delay = 0.0  # seconds to wait before answering DATA, without blocking
        # Called with the number of messages accepted so far, before each answer.
        self.on_message: Callable[[int], None] | None = None
        self.lock = threading.Lock()
        self.accepted_at: list[float] = []  # monotonic time of each acceptance
        self.peers: set[object] = set()  # client (host, port): one per connection
        self.in_data = 0  # messages between DATA and the answer right now
        self.peak_in_data = 0  # the most there ever were at once
        self.open_connections = 0  # client connections open right now
        self.peak_connections = 0  # the most there ever were at once
        # DATA answers being worked out right now, recording included: zero once
        # everything a client sent has been accepted or refused.
        self.handling = 0
        self.gate: DataGate | None = None  # see hold_data
        self.controller = _CountingController(
            _Handler(self), hostname="127.0.0.1", port=self.port, **controller_options
        )

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def fail_next(self, *replies: str) -> None:
        """Answer the next messages' DATA with these replies, e.g. ``"451 try later"``.

        ``"ok"`` accepts as usual, ``"drop"`` aborts the connection without an
        answer, and ``"stall"`` freezes the server for ``stall_seconds``.
        """
        with self.lock:
            self.faults.extend(replies)

    def hold_data(self, count: int, timeout: float) -> DataGate:
        """Hold each DATA until ``count`` are in DATA at once (or ``timeout`` s).

        The sender side then cannot finish a message before the others have
        started theirs, so "``count`` at once" no longer depends on how the
        operating system schedules the senders.
        """
        with self.lock:
            self.gate = DataGate(count, timeout)
            return self.gate

    async def pass_gate(self) -> None:
        """Wait at the gate, if there is one, until it opens."""
        gate = self.gate
        if gate is None:
            return
        while True:
            with self.lock:
                if gate.deadline is None:
                    gate.deadline = time.monotonic() + gate.timeout
                if not gate.opened and self.in_data >= gate.count:
                    gate.opened = gate.reached = True
                if not gate.opened and time.monotonic() >= gate.deadline:
                    gate.opened = True  # gave up waiting: ``reached`` stays False
                if gate.opened:
                    return
            await asyncio.sleep(0.005)

    def handling_changed(self, change: int) -> None:
        """Track the DATA answers in progress."""
        with self.lock:
            self.handling += change

    def idle(self) -> bool:
        """Tell whether no client is connected and no DATA is being answered."""
        with self.lock:
            return self.open_connections == 0 and self.handling == 0

    def connections_changed(self, change: int) -> None:
        """Track the connections open at once."""
        with self.lock:
            self.open_connections += change
            self.peak_connections = max(self.peak_connections, self.open_connections)

    def sending_started(self, peer: object) -> None:
        """Count a message whose DATA is being answered, and its connection."""
        with self.lock:
            self.peers.add(peer)
            self.in_data += 1
            self.peak_in_data = max(self.peak_in_data, self.in_data)

    def sending_ended(self) -> None:
        """Count a message whose DATA has been answered."""
        with self.lock:
            self.in_data -= 1

    def next_fault(self) -> str | None:
        """Pop the next planned fault, if any."""
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def message_ids(self) -> Counter[str]:
        """Count the accepted messages by their Message-ID."""
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until ``count`` messages were accepted; tell whether they were."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return True
            time.sleep(0.05)
        return False


class HangingServer:
    """Accepts TCP connections and never answers: a stuck SMTP server."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for connection in self.accepted:
            connection.close()

    def _accept(self) -> None:
        """Accept and hold every connection until closed."""
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(connection)
