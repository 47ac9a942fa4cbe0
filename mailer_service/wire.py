"""The message's bytes on the wire: what Flask-Mail sends, written faster.

Flask-Mail flattens every message with ``email.policy.SMTP``. That policy
parses each header into a structured object whenever the generator reads it
(the content type of every part, several times) and again to fold it. A
profile of one mailer put that parsing at the top of its time per message.

:func:`flatten` writes the same bytes with :data:`WIRE`, a compat32 policy
(headers stay the strings they were stored as) whose folding hands every
header that SMTP would change, one too long for a line or not ASCII, to
``email.policy.SMTP`` itself. The other headers SMTP writes unchanged, and so
does this. ``tests/mailer/test_wire.py`` compares the two byte for byte.
"""

from __future__ import annotations

from email import policy
from email._policybase import Compat32
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO
from typing import Any

# SMTP's line length (78): a longer header line is refolded, a shorter one kept.
FOLD_AT: int = policy.SMTP.max_line_length or 78


class WirePolicy(Compat32):
    """compat32 reading and SMTP's folding, with CRLF line ends."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        """Write a short ASCII header as stored; let the SMTP policy fold the rest."""
        if type(value) is str and value.isascii():
            lines = value.splitlines()
            first = len(name) + 2 + (len(lines[0]) if lines else 0)
            if first <= FOLD_AT and all(len(line) <= FOLD_AT for line in lines[1:]):
                return f"{name}: {self.linesep.join(lines)}{self.linesep}"
        return policy.SMTP.fold(name, value)


WIRE = WirePolicy(linesep="\r\n", mangle_from_=False, max_line_length=FOLD_AT)


def flatten(message: Message) -> bytes:
    """Return ``message`` as the bytes ``message.as_bytes(policy=SMTP)`` gives."""
    out = BytesIO()
    BytesGenerator(out, policy=WIRE).flatten(message)
    return out.getvalue()
