"""The retry policy as a pure unit: classification and backoff."""

from __future__ import annotations

import random
import smtplib

import pytest
from flask_mail import BadHeaderError

from mailer_service.policy import (
    MAX_ERROR_LENGTH,
    Decision,
    Failure,
    RetryPolicy,
    backoff_delay,
    classify,
)


@pytest.mark.parametrize(
    ("exc", "permanent", "lost", "code"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}),
            True,
            False,
            550,
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@x": (451, b"greylisted")}),
            False,
            False,
            451,
        ),
        (smtplib.SMTPSenderRefused(553, b"bad sender", "s@x"), True, False, 553),
        (smtplib.SMTPDataError(452, b"mailbox full"), False, False, 452),
        (smtplib.SMTPDataError(554, b"spam"), True, False, 554),
        (smtplib.SMTPDataError(421, b"shutting down"), False, True, 421),
        (smtplib.SMTPServerDisconnected("gone"), False, True, None),
        (ConnectionRefusedError(111, "refused"), False, True, None),
        (ConnectionResetError(104, "reset"), False, True, None),
        (TimeoutError("timed out"), False, True, None),
        (BadHeaderError(), True, False, None),
        (UnicodeEncodeError("ascii", "ü", 0, 1, "bad"), True, False, None),
    ],
)
def test_classify_permanent_and_transient(exc, permanent, lost, code):
    failure = classify(exc)

    assert (failure.permanent, failure.connection_lost, failure.code) == (
        permanent,
        lost,
        code,
    )
    assert failure.error


@pytest.mark.parametrize(
    "exc",
    [
        smtplib.SMTPAuthenticationError(535, b"bad credentials"),
        smtplib.SMTPConnectError(554, b"go away"),
    ],
)
def test_classify_errors_while_connecting_are_never_permanent(exc):
    failure = classify(exc, connecting=True)

    assert not failure.permanent
    assert failure.connection_lost
    assert failure.error.startswith(str(exc.smtp_code))


def test_classify_keeps_code_and_text_in_error():
    failure = classify(smtplib.SMTPRecipientsRefused({"a@x": (550, b"5.1.1 unknown")}))

    assert failure.error == "550 5.1.1 unknown"


def test_backoff_doubles_and_is_capped():
    """Without jitter's randomness (rng at its extremes) the schedule is exact."""

    class Extreme(random.Random):
        def __init__(self, high: bool) -> None:
            super().__init__()
            self.high = high

        def uniform(self, a: float, b: float) -> float:
            return b if self.high else a

    high = [backoff_delay(n, 30, 600, Extreme(True)) for n in range(1, 8)]
    low = [backoff_delay(n, 30, 600, Extreme(False)) for n in range(1, 8)]

    assert high == [30, 60, 120, 240, 480, 600, 600]
    assert low == [15, 30, 60, 120, 240, 300, 300]


def test_backoff_jitter_spreads_within_half_to_full_delay():
    rng = random.Random(1)
    delays = [backoff_delay(3, 10, 1000, rng) for _ in range(200)]

    assert all(20 <= d <= 40 for d in delays)
    assert len({round(d, 3) for d in delays}) > 150  # really jittered


POLICY = RetryPolicy(
    max_attempts=3, backoff_seconds=10, backoff_max_seconds=100, rng=random.Random(1)
)


def test_policy_success_is_sent() -> None:
    assert POLICY.decide(None, 1) == Decision("sent")


def test_policy_transient_failure_is_retried_with_backoff() -> None:
    decision = POLICY.decide(Failure("451 later", code=451), 2)

    assert (decision.result, decision.error) == ("retry", "451 later")
    assert 10 <= decision.retry_in <= 20  # 10 x 2^(2-1), equal jitter


def test_policy_last_attempt_fails_the_row() -> None:
    decision = POLICY.decide(Failure("451 later", code=451), 3)

    assert decision == Decision("failed", "451 later")


def test_policy_permanent_failure_fails_at_once() -> None:
    assert POLICY.decide(Failure("550 no", code=550, permanent=True), 1).result == (
        "failed"
    )


def test_policy_truncates_the_recorded_error() -> None:
    decision = POLICY.decide(Failure("x" * 5000), 1)

    assert decision.error == "x" * MAX_ERROR_LENGTH
