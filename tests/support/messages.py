"""Messages the mailer tests queue and send: one that uses every field."""

from __future__ import annotations

from datetime import UTC, datetime

from outbox_contract import Attachment, MailMessage

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # binary, with CR and LF in it
DATE = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def full_message() -> MailMessage:
    """A message with every field: names, cc, bcc, headers, a file, an image."""
    return MailMessage.build(
        subject="Your order",
        sender=("Shop, Inc.", "shop@example.com"),
        to=[("Doe, John", "jd@example.com"), "ann@example.com"],
        cc=[("Büro", "office@example.com")],
        bcc=["audit@example.com"],
        reply_to=("Help desk", "help@example.com"),
        headers={"X-Order": "1234", "List-Unsubscribe": "<https://shop.example/u>"},
        text="Thanks for your order.",
        html='<p>Thanks!</p><img src="cid:logo">',
        date=DATE,
        attachments=(
            Attachment(b"%PDF-1.4 invoice", "application/pdf", "invoice.pdf"),
            Attachment(
                PNG, "image/png", "logo.png", "inline", (("Content-ID", "<logo>"),)
            ),
        ),
    )
