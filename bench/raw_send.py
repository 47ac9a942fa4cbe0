"""The raw limit: a plain smtplib loop over one connection, in its own process.

``python -m bench.raw_send PORT COUNT`` builds COUNT welcome-like messages as
bytes *before* connecting, then sends them all over one SMTP connection to
127.0.0.1:PORT and prints a :class:`bench.messages.LoopTimes` JSON line. It
runs apart from the benchmark process so it shares no GIL with an in-process
sink, just as the mailer processes do not.
"""

from __future__ import annotations

import smtplib
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate

from bench.messages import SENDER, SMTP_TIMEOUT, LoopTimes, parse_loop_args, welcome

Envelope = tuple[str, list[str], bytes]  # (MAIL FROM, RCPT TOs, message bytes)


def build_messages(count: int, prefix: str) -> list[Envelope]:
    """Return ``count`` ready-to-send messages: text and HTML, a fixed Message-ID."""
    messages = []
    for index in range(count):
        fields = welcome(prefix, index)
        message = EmailMessage()
        message["From"] = SENDER
        message["To"] = fields.recipient
        message["Subject"] = fields.subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = fields.message_id
        message.set_content(fields.body_text)
        message.add_alternative(fields.body_html, subtype="html")
        messages.append((SENDER, [fields.recipient], message.as_bytes()))
    return messages


def send_all(port: int, messages: list[Envelope]) -> LoopTimes:
    """Send ``messages`` over one SMTP connection; time the first and last 250."""
    first = last = 0.0
    with smtplib.SMTP("127.0.0.1", port, timeout=SMTP_TIMEOUT) as smtp:
        for index, (sender, recipients, data) in enumerate(messages):
            smtp.sendmail(sender, recipients, data)  # raises unless accepted
            last = time.perf_counter()
            if index == 0:
                first = last
    return LoopTimes(sent=len(messages), first=first, last=last)


def main() -> int:
    """Build, send and report; the exit status is 0 when all were accepted."""
    args = parse_loop_args(__doc__)
    messages = build_messages(args.count, args.prefix)
    print(send_all(args.port, messages).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
