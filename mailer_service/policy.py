"""The retry policy: which failures are retried, and when."""

from __future__ import annotations

import random
import smtplib
from dataclasses import dataclass

from flask_mail import BadHeaderError

# What building and sending a message may raise; anything else is a bug.
DELIVERY_ERRORS = (OSError, ValueError, BadHeaderError)  # SMTPException is OSError


@dataclass(frozen=True)
class Failure:
    """Why one delivery attempt failed, and what that means for the row."""

    error: str  # recorded in outbox.last_error
    code: int | None = None  # the SMTP reply code, when the server gave one
    permanent: bool = False  # never retry: the message itself is at fault
    connection_lost: bool = False  # the SMTP connection cannot be used again


def classify(exc: Exception, *, connecting: bool = False) -> Failure:
    """Turn one of the DELIVERY_ERRORS into a Failure.

    SMTP 5xx replies to a message are permanent; 4xx replies, timeouts and
    network errors are transient. Errors while connecting (refused, 4xx/5xx
    greeting, failed login) are never the message's fault: always transient.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
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
