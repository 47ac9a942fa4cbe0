"""The suppression list at send time: who is kept out of SMTP, and who joins the list.

Checked when a batch is sent, not only when mail is queued, so an address
that bounced hard this morning is not mailed again this afternoon by rows
queued before the bounce. A row queued with ``bypass_suppression`` is sent to
everyone; if it reaches a suppressed address, that address is lifted.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailer_service.policy import enhanced_code, is_hard_bounce
from mailer_service.smtp import Attempt
from mailer_service.store import ClaimedRow, OutboxStore
from outbox_contract.message import MessageError, StoredEnvelope

SUPPRESSED = "suppressed"  # the reply text recorded for a suppressed recipient


def suppressed_in_batch(
    store: OutboxStore, rows: Iterable[ClaimedRow]
) -> frozenset[str]:
    """Return the batch's recipients (lower-cased) that are on the list.

    One query per batch, over the rows that do not bypass the list.
    """
    addresses: set[str] = set()
    for row in rows:
        if row.bypass_suppression:
            continue
        try:
            envelope = StoredEnvelope.from_row(row.recipient, row.message)
        except (MessageError, KeyError, ValueError):
            continue  # the send itself will fail this row with the reason
        addresses.update(a.address.lower() for a in envelope.recipients)
    return frozenset(store.suppressed_among(addresses))


def for_row(row: ClaimedRow, suppressed: frozenset[str]) -> frozenset[str]:
    """Return the addresses to keep out of ``row``'s envelope."""
    return frozenset() if row.bypass_suppression else suppressed


def hard_bounces(attempt: Attempt) -> list[tuple[str, int, str | None, str]]:
    """Return (address, code, enhanced code, reply) of each hard-bounced recipient.

    A recipient refused at RCPT TO with 5.1.1 and kin, or the only recipient
    of a message refused at DATA with one: the reply is about that address.
    """
    bounced = [
        (address, code, enhanced_code(reply), reply)
        for address, (code, reply) in attempt.refused.items()
        if is_hard_bounce(code, reply)
    ]
    failure = attempt.failure
    if (
        not bounced
        and failure is not None
        and len(attempt.recipients) == 1
        and not attempt.refused
        and is_hard_bounce(failure.code, _reply_text(failure.error))
    ):
        reply = _reply_text(failure.error)
        bounced.append(
            (attempt.recipients[0], failure.code, enhanced_code(reply), reply)
        )
    return bounced


def refused_and_suppressed(attempt: Attempt) -> dict[str, tuple[int | None, str]]:
    """Return what ``outbox.refused`` records: the server's refusals and ours."""
    skipped = {address: (None, SUPPRESSED) for address in attempt.suppressed}
    return {**skipped, **attempt.refused}


def _reply_text(error: str) -> str:
    """Return a recorded error without its reply code: "550 5.1.1 x" -> "5.1.1 x"."""
    code, _, text = error.partition(" ")
    return text if code.isdigit() else error
