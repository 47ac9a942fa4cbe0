"""The welcome-like messages the ceiling loops send, and how the loops report.

Each loop runs as ``python -m bench.<loop> PORT COUNT`` in its own process and
prints one JSON line: how many messages were accepted and when the first and
the last 250 arrived. The rate is taken from those two instants, with the
same formula the mailer figures use on ``outbox.sent_at``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

SENDER = "Outbox Demo <no-reply@example.com>"
SUBJECT = "Welcome aboard!"
SMTP_TIMEOUT = 60.0  # seconds per SMTP command; the machine is shared

# About the size of the real welcome email, so every sender moves the same bytes.
TEXT = (
    "Hello there,\n\nThanks for signing up with {email}. Your account is ready.\n\n"
    "If you did not sign up, you can ignore this message.\n"
)
HTML = (
    "<!doctype html>\n<html>\n  <body>\n    <p>Hello there,</p>\n"
    "    <p>Thanks for signing up with <strong>{email}</strong>."
    " Your account is ready.</p>\n"
    "    <p>If you did not sign up, you can ignore this message.</p>\n"
    "  </body>\n</html>\n"
)


@dataclass(frozen=True)
class Welcome:
    """One message's fields, as an outbox row holds them."""

    recipient: str
    subject: str
    body_text: str
    body_html: str
    message_id: str


def welcome(prefix: str, index: int) -> Welcome:
    """Return message ``index`` of a run, with a fixed, unique Message-ID."""
    email = f"{prefix}-{index}@example.com"
    return Welcome(
        recipient=email,
        subject=SUBJECT,
        body_text=TEXT.format(email=email),
        body_html=HTML.format(email=email),
        message_id=f"<{prefix}-{index}@example.com>",
    )


@dataclass(frozen=True)
class LoopTimes:
    """What one loop reports: accepted messages, first and last 250 (seconds)."""

    sent: int
    first: float  # time.perf_counter() when the first 250 arrived
    last: float  # time.perf_counter() when the last 250 arrived

    @property
    def per_second(self) -> float:
        """Return messages per second between the first and the last 250."""
        return rate(self.sent, self.last - self.first)

    def to_json(self) -> str:
        """Return the JSON line the loop prints."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> LoopTimes:
        """Read the JSON line a loop printed."""
        return cls(**json.loads(line))


def rate(count: int, span: float) -> float:
    """Return ``count`` messages over ``span`` seconds, or 0.0 when undefined."""
    return count / span if span > 0 and count > 1 else 0.0


def parse_loop_args(description: str | None) -> argparse.Namespace:
    """Parse a loop's command line: PORT COUNT [--prefix P]."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("port", type=int, help="SMTP port on 127.0.0.1")
    parser.add_argument("count", type=int, help="messages to send")
    parser.add_argument("--prefix", default="ceiling", help="of addresses and ids")
    return parser.parse_args()
