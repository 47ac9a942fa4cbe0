"""The raw limit: a plain smtplib loop over one connection, in its own process.

``python -m bench.raw_send PORT FILE`` sends every message in FILE (JSON lines
of ``from``, ``to`` and base64 ``data``) to 127.0.0.1:PORT. It runs apart
from the benchmark process so it does not share a GIL with the SMTP sink,
just as the mailer processes do not.
"""

from __future__ import annotations

import base64
import json
import smtplib
import sys
from pathlib import Path

SMTP_TIMEOUT = 60.0  # seconds per SMTP command; the machine is shared


def write_messages(path: Path, messages: list[tuple[str, list[str], bytes]]) -> None:
    """Write (sender, recipients, raw bytes) triples as JSON lines."""
    with path.open("w") as out:
        for sender, recipients, data in messages:
            line = {"from": sender, "to": recipients, "data": base64.b64encode(data)}
            line["data"] = line["data"].decode()
            out.write(json.dumps(line) + "\n")


def send_all(port: int, path: Path) -> int:
    """Send every message in ``path`` over one SMTP connection; return the count."""
    sent = 0
    with (
        smtplib.SMTP("127.0.0.1", port, timeout=SMTP_TIMEOUT) as smtp,
        path.open() as f,
    ):
        for line in f:
            message = json.loads(line)
            smtp.sendmail(
                message["from"], message["to"], base64.b64decode(message["data"])
            )
            sent += 1
    return sent


def main() -> int:
    """Send the file named on the command line; return the exit status."""
    port, path = int(sys.argv[1]), Path(sys.argv[2])
    print(f"sent {send_all(port, path)} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
