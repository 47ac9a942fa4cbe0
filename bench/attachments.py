"""What a 100 KB attachment costs per message: one mailer, with and without it.

The same welcome-like rows, queued with ``enqueue_email(session,
MailMessage.build(...))``, are drained by one mailer process against
smtp-sink twice per round: plain, then each carrying one attachment of
random bytes (``application/pdf``). Rounds alternate the two, so both see
the same machine noise; each kind's rate is its sent rows over the sum of its
``sent_at`` spans. The database cost is ``outbox_attachments``' whole size
(table, TOAST and index) over the rows it holds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bench import pg
from bench.context import Bench
from bench.messages import HTML, SUBJECT, TEXT
from bench.throughput import Drain, Fill, drain
from outbox_contract import Attachment, MailMessage, enqueue_email
from outbox_contract.settings import database_url

ATTACHMENT_BYTES = 100 * 1024  # bytes of content per attachment
CONTENT_TYPE = "application/pdf"
ROUNDS = 2  # plain then attached, this many times
MESSAGE_ID_DOMAIN = "example.com"
BASE64_LINE = 76  # characters per line of a base64 body part, RFC 2045


@dataclass(frozen=True)
class AttachmentCost:
    """One mailer's rate on plain rows and on the same rows with an attachment."""

    plain: Drain  # every plain round, summed
    attached: Drain  # every attached round, summed
    attachment_bytes: int  # content bytes of the one attachment per row
    table_bytes: int  # pg_total_relation_size('outbox_attachments'), last round
    table_rows: int  # outbox rows behind table_bytes

    @property
    def ratio(self) -> float:
        """Return the attached rate over the plain rate."""
        plain = self.plain.per_second
        return self.attached.per_second / plain if plain else 0.0

    @property
    def extra_ms(self) -> float:
        """Return the milliseconds an attachment adds to each message's send."""
        plain, attached = self.plain.per_second, self.attached.per_second
        if not plain or not attached:
            return 0.0
        return (1 / attached - 1 / plain) * 1000

    @property
    def bytes_per_row(self) -> float:
        """Return ``outbox_attachments``' bytes per row that carries one."""
        return self.table_bytes / self.table_rows if self.table_rows else 0.0

    @property
    def wire_bytes(self) -> int:
        """Return the attachment's base64 bytes on the wire (76-column CRLF lines)."""
        encoded = 4 * math.ceil(self.attachment_bytes / 3)
        return encoded + 2 * math.ceil(encoded / BASE64_LINE)


def welcome_message(email: str, attachment: Attachment | None) -> MailMessage:
    """Return a welcome-like message to ``email``, with ``attachment`` if given."""
    return MailMessage.build(
        subject=SUBJECT,
        to=email,
        text=TEXT.format(email=email),
        html=HTML.format(email=email),
        attachments=(attachment,) if attachment else (),
    )


def enqueue_messages(url: str, messages: list[MailMessage]) -> None:
    """Queue ``messages`` with ``enqueue_email``, all in one transaction."""
    engine = create_engine(database_url({"DATABASE_URL": url}), poolclass=NullPool)
    try:
        with Session(engine) as session:
            for message in messages:
                enqueue_email(session, message, message_id_domain=MESSAGE_ID_DOMAIN)
            session.commit()
    finally:
        engine.dispose()


def filler(attachment: Attachment | None) -> Fill:
    """Return a drain's fill: one welcome-like message per address."""

    def fill(url: str, emails: list[str]) -> None:
        """Queue one message per address, each with the attachment if any."""
        enqueue_messages(url, [welcome_message(e, attachment) for e in emails])

    return fill


def attachments_size(url: str) -> int:
    """Return ``outbox_attachments``' size: heap, TOAST and indexes, in bytes."""
    with pg.connect(url) as connection:
        row = connection.execute(
            "SELECT pg_total_relation_size('outbox_attachments')"
        ).fetchone()
    return int(row[0]) if row else 0


def combine(drains: list[Drain]) -> Drain:
    """Sum the rounds of one kind: rows, sent rows, spans and attempts."""
    first = drains[0]
    return Drain(
        first.processes,
        first.sink,
        sum(d.rows for d in drains),
        sum(d.sent for d in drains),
        sum(d.span for d in drains),
        sum(d.attempts for d in drains),
    )


def measure_attachment_cost(bench: Bench, rows: int) -> AttachmentCost:
    """Drain ``rows`` plain and ``rows`` attached rows with one mailer, ROUNDS times."""
    # One random blob for every row: incompressible, as a PDF mostly is, and
    # TOAST stores each row's copy on its own anyway.
    attachment = Attachment(
        content=os.urandom(ATTACHMENT_BYTES),
        content_type=CONTENT_TYPE,
        filename="invoice.pdf",
    )
    plain: list[Drain] = []
    attached: list[Drain] = []
    table_bytes = 0
    for n in range(ROUNDS):
        plain.append(drain(bench, bench.sink, 1, rows, f"plain-{n}", fill=filler(None)))
        attached.append(
            drain(bench, bench.sink, 1, rows, f"attached-{n}", fill=filler(attachment))
        )
        # Before the next drain truncates it; the mailer never deletes a part.
        table_bytes = attachments_size(bench.db_url)
    return AttachmentCost(
        combine(plain), combine(attached), ATTACHMENT_BYTES, table_bytes, rows
    )
