"""The retry policy: what one failed attempt means for its row, and when to retry."""

from __future__ import annotations

import random
import re
import smtplib
from dataclasses import dataclass
from typing import Literal

from flask_mail import BadHeaderError

MAX_ERROR_LENGTH = 1000  # characters of an error kept in outbox.last_error

# Enhanced status codes (RFC 3463) that say the mailbox does not exist or never
# will: bad address, bad system, bad syntax, moved, null MX. Mailbox full
# (x.2.2) and policy (5.7.x) are about the moment or the sender, not the address.
HARD_BOUNCES = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"})
# "5.1.1 user unknown", or a whole recorded error: "550 5.1.1 user unknown".
_ENHANCED = re.compile(r"^\s*(?:\d{3}[ -])?([245]\.\d{1,3}\.\d{1,3})\b")

# What building and sending a message may raise; anything else is a bug.
DELIVERY_ERRORS = (OSError, ValueError, BadHeaderError)  # SMTPException is OSError


@dataclass(frozen=True)
class Failure:
    """Why one delivery attempt failed, and what that means for the row."""

    error: str  # recorded in outbox.last_error
    code: int | None = None  # the SMTP reply code, when the server gave one
    permanent: bool = False  # never retry: the message itself is at fault
    connection_lost: bool = False  # the SMTP connection cannot be used again
    slow_down: bool = False  # the server said 421 or "too many": send less for a while

    @property
    def ends_batch(self) -> bool:
        """Tell whether the sender must stop: connection gone, or asked to slow down."""
        return self.connection_lost or self.slow_down


def classify(exc: Exception, *, connecting: bool = False) -> Failure:
    """Turn one of the DELIVERY_ERRORS into a Failure.

    SMTP 5xx replies to a message are permanent; 4xx replies, timeouts and
    network errors are transient. Errors while connecting (refused, 4xx/5xx
    greeting, failed login) are never the message's fault: always transient.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # Every recipient refused. Permanent only if every refusal is: a 4xx
        # for one of them means a later attempt may still reach it.
        replies = list(exc.recipients.values())
        transient = [r for r in replies if not 500 <= r[0] < 600]
        code, reply = (transient or replies)[0]
        return _reply_failure(code, reply, connecting)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_failure(exc.smtp_code, exc.smtp_error, connecting)
    if isinstance(exc, OSError):  # refused, reset, timeout, server disconnected
        name = type(exc).__name__
        return Failure(f"{name}: {exc}", connection_lost=True)
    # BadHeaderError, or a ValueError such as UnicodeEncodeError on an address.
    return Failure(f"cannot build message: {type(exc).__name__}: {exc}", permanent=True)


def _reply_failure(code: int, reply: bytes | str, connecting: bool) -> Failure:
    """Classify an SMTP reply code; 421 also means the server hung up."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return Failure(
        f"{code} {text}",
        code=code,
        permanent=500 <= code < 600 and not connecting,
        connection_lost=connecting or code == 421,
        slow_down=code == 421 or (400 <= code < 500 and "too many" in text.lower()),
    )


def enhanced_code(reply: str | None) -> str | None:
    """Return the enhanced status code a reply text starts with, e.g. ``5.1.1``."""
    match = _ENHANCED.match(reply or "")
    return match[1] if match else None


def is_hard_bounce(code: int | None, reply: str | None) -> bool:
    """Tell whether a reply says the address is dead for good (5.1.1 and kin)."""
    return (
        code is not None and 500 <= code < 600 and enhanced_code(reply) in HARD_BOUNCES
    )


def backoff_delay(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): base * 2^(attempt-1).

    Capped at ``cap``, then jittered into [delay/2, delay] so that rows which
    failed together do not come back together ("equal jitter").
    """
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


@dataclass(frozen=True)
class Decision:
    """What happens to a row after one attempt."""

    result: Literal["sent", "retry", "failed", "suppressed"]
    error: str | None = None  # for outbox.last_error, already truncated
    retry_in: float = 0.0  # seconds until the next attempt, for "retry"


@dataclass(frozen=True)
class RetryPolicy:
    """Given an attempt's failure (or None) and its number, decide the row's fate."""

    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    rng: random.Random

    def decide(self, failure: Failure | None, attempt: int) -> Decision:
        """Return sent, failed (permanent or out of attempts) or retry with a delay."""
        if failure is None:
            return Decision("sent")
        error = failure.error[:MAX_ERROR_LENGTH]
        if failure.permanent or attempt >= self.max_attempts:
            return Decision("failed", error)
        delay = backoff_delay(
            attempt, self.backoff_seconds, self.backoff_max_seconds, self.rng
        )
        return Decision("retry", error, delay)
