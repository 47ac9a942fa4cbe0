"""A whole email as the outbox stores it: explicit, versioned JSON, never a pickle.

A :class:`MailMessage` is checked when it is made, so a message that could not
be sent (an unsafe header, a malformed address, too many bytes) is refused at
enqueue, in the producer's request, with :class:`MessageError` naming the
problem, and nothing is written.

The columns ``recipient``, ``subject``, ``body_text``, ``body_html`` and
``message_id`` keep the plain contract. ``outbox.message`` holds the rest as
JSON, version 1::

    {"v": 1,
     "from": {"name": "Shop", "address": "shop@example.com"} or null,
     "to": [{"name": "Doe, John", "address": "jd@example.com"}],
     "cc": [...], "bcc": [...],
     "reply_to": {"name": "", "address": "help@example.com"} or null,
     "date": "2026-12-04T07:56:08Z",
     "headers": [["X-Campaign", "spring"]],
     "attachments": 2}

Display names and addresses are kept as given, as pairs, so a name with a
comma survives. Attachments live in ``outbox_attachments``; ``attachments``
only counts them, so the mailer knows whether to load any. A reader that
meets a version it does not know refuses the row instead of guessing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formataddr, parseaddr
from typing import Any

from outbox_contract.settings import parse_int

VERSION = 1
DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # bytes; OUTBOX_MAX_MESSAGE_BYTES
MAX_LINE = 998  # octets in one line of a message, RFC 5322 section 2.1.1

# Headers the mailer writes itself (or, for Bcc, must never write): a caller's
# copy would be a second one, or would leak the blind copies.
OWNED_HEADERS = frozenset(
    name.lower()
    for name in (
        "Message-ID",
        "Bcc",
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Reply-To",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
)
# An attachment's part headers that Flask-Mail writes from its own fields.
OWNED_PART_HEADERS = frozenset(
    {"content-type", "content-transfer-encoding", "content-disposition"}
)
DISPOSITIONS = ("attachment", "inline")
_UNSAFE = ("\r", "\n", "\0")  # would let a value add or split headers
_FIELD_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322: printable ASCII but ":"
_ADDRESS = re.compile(r"^[^\s@<>,;\"]+@[^\s@<>,;\"]+$")
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


class MessageError(ValueError):
    """A message the outbox will not queue; the text names the problem."""


class MessageTooLarge(MessageError):
    """A message over ``OUTBOX_MAX_MESSAGE_BYTES``."""


def max_message_bytes(environ: Mapping[str, str] = os.environ) -> int:
    """Return ``OUTBOX_MAX_MESSAGE_BYTES`` (default 10 MiB)."""
    return parse_int(
        environ, "OUTBOX_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, minimum=1
    )


def _check_line(what: str, value: str) -> str:
    """Refuse a value with CR, LF or NUL, which could add or split headers."""
    if not isinstance(value, str):
        raise MessageError(f"{what} must be a string, got {type(value).__name__}")
    if any(c in value for c in _UNSAFE):
        raise MessageError(f"{what} must not contain CR, LF or NUL")
    return value


@dataclass(frozen=True)
class Address:
    """One mailbox: an address and the display name that goes with it, exactly."""

    address: str
    name: str = ""

    def __post_init__(self) -> None:
        _check_line("a display name", self.name)
        _check_line("an address", self.address)
        if not _ADDRESS.match(self.address):
            raise MessageError(f"not an email address: {self.address!r}")

    @classmethod
    def parse(cls, value: str | tuple[str, str] | Address) -> Address:
        """Read ``"a@example.com"``, ``'"Doe, John" <a@example.com>'`` or a pair."""
        if isinstance(value, Address):
            return value
        if isinstance(value, tuple) and len(value) == 2:
            name, address = value
            return cls(address=_check_line("an address", address).strip(), name=name)
        if not isinstance(value, str):
            raise MessageError(
                f"an address must be a string or a (name, address) pair, got {value!r}"
            )
        _check_line("an address", value)
        name, address = parseaddr(value)
        if not address:
            raise MessageError(f"not an email address: {value!r}")
        return cls(address=address, name=name)

    def formatted(self) -> str:
        """Render as a header value would show it: ``"Doe, John" <jd@example.com>``."""
        return formataddr((self.name, self.address)) if self.name else self.address

    def to_json(self) -> dict[str, str]:
        """Return the stored form."""
        return {"name": self.name, "address": self.address}

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> Address:
        """Read the stored form."""
        return cls(address=data["address"], name=data.get("name", ""))


def _check_header(name: str, value: str, owned: frozenset[str]) -> tuple[str, str]:
    """Refuse a header the mailer owns, or one that is unsafe or too long."""
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise MessageError(f"not a header name: {name!r}")
    if name.lower() in owned:
        raise MessageError(f"the {name} header is set by the outbox, not by headers")
    _check_line(f"the {name} header", value)
    if len(name) + 2 + len(value.encode()) > MAX_LINE:
        raise MessageError(f"the {name} header is longer than {MAX_LINE} octets")
    return name, value


@dataclass(frozen=True)
class Attachment:
    """One attached file, or an inline image the HTML shows with ``cid:``."""

    content: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None
    disposition: str = "attachment"
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.content, bytes):
            raise MessageError("an attachment's content must be bytes")
        if not _CONTENT_TYPE.match(self.content_type or ""):
            raise MessageError(f"not a content type: {self.content_type!r}")
        if self.disposition not in DISPOSITIONS:
            raise MessageError(
                f"disposition must be attachment or inline, got {self.disposition!r}"
            )
        if self.filename is not None:
            _check_line("an attachment's filename", self.filename)
        for name, value in self.headers:
            _check_header(name, value, OWNED_PART_HEADERS)


@dataclass(frozen=True)
class MailMessage:
    """A whole email: every field Flask-Mail's ``Message`` can carry to the wire."""

    subject: str
    to: tuple[Address, ...] = ()
    text: str = ""
    html: str | None = None
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    sender: Address | None = None  # None: the mailer's MAIL_DEFAULT_SENDER
    reply_to: Address | None = None
    headers: tuple[tuple[str, str], ...] = ()
    date: datetime | None = None  # None: the time it is queued
    attachments: tuple[Attachment, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.subject or not isinstance(self.subject, str):
            raise MessageError("subject must be one non-empty line")
        _check_line("subject", self.subject)
        if not (self.to or self.cc or self.bcc):
            raise MessageError("a message needs at least one recipient")
        if not isinstance(self.text, str):
            raise MessageError("text must be a string")
        if self.html is not None and not isinstance(self.html, str):
            raise MessageError("html must be a string or None")
        if self.date is not None and self.date.tzinfo is None:
            raise MessageError("date must be timezone-aware")
        for name, value in self.headers:
            _check_header(name, value, OWNED_HEADERS)

    @classmethod
    def build(
        cls,
        *,
        subject: str,
        to: Iterable[Any] | str | tuple[str, str] = (),
        cc: Iterable[Any] = (),
        bcc: Iterable[Any] = (),
        sender: Any = None,
        reply_to: Any = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        **rest: Any,
    ) -> MailMessage:
        """Make a message from addresses in any accepted form (see Address.parse)."""
        if isinstance(to, str) or _is_pair(to):
            to = [to]
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
        return cls(
            subject=subject,
            to=_addresses(to),
            cc=_addresses(cc),
            bcc=_addresses(bcc),
            sender=None if sender is None else Address.parse(sender),
            reply_to=None if reply_to is None else Address.parse(reply_to),
            headers=tuple((str(k), str(v)) for k, v in pairs),
            **rest,
        )

    @property
    def recipients(self) -> tuple[Address, ...]:
        """Every envelope recipient, To then Cc then Bcc, each address once."""
        return unique_recipients(self.to, self.cc, self.bcc)

    def size(self) -> int:
        """Return the bytes this message takes before transfer encoding."""
        parts = [self.subject, self.text, self.html or ""]
        parts += [f"{k}: {v}" for k, v in self.headers]
        parts += [a.formatted() for a in (*self.to, *self.cc, *self.bcc)]
        return sum(len(p.encode()) for p in parts) + sum(
            len(a.content) for a in self.attachments
        )

    def check_size(self, limit: int) -> None:
        """Raise MessageTooLarge when the message is bigger than ``limit`` bytes."""
        size = self.size()
        if size > limit:
            raise MessageTooLarge(
                f"message is {size} bytes, over OUTBOX_MAX_MESSAGE_BYTES ({limit})"
            )

    def to_json(self, date: datetime) -> dict[str, Any]:
        """Return the stored form (version 1), dated ``date``."""
        return {
            "v": VERSION,
            "from": self.sender.to_json() if self.sender else None,
            "to": [a.to_json() for a in self.to],
            "cc": [a.to_json() for a in self.cc],
            "bcc": [a.to_json() for a in self.bcc],
            "reply_to": self.reply_to.to_json() if self.reply_to else None,
            "date": date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "headers": [list(pair) for pair in self.headers],
            "attachments": len(self.attachments),
        }


@dataclass(frozen=True)
class StoredEnvelope:
    """What ``outbox.message`` holds, read back for sending or showing."""

    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    sender: Address | None = None
    reply_to: Address | None = None
    date: datetime | None = None
    headers: tuple[tuple[str, str], ...] = ()
    attachments: int = 0

    @classmethod
    def from_row(cls, recipient: str, message: Any) -> StoredEnvelope:
        """Read ``outbox.message`` (JSON text or a dict); NULL means a plain row."""
        if message is None:
            return cls(to=(Address.parse(recipient),))
        data = _json(message)
        if data.get("v") != VERSION:
            raise MessageError(f"outbox.message has unknown version {data.get('v')!r}")
        return cls(
            to=tuple(Address.from_json(a) for a in data["to"]),
            cc=tuple(Address.from_json(a) for a in data.get("cc", ())),
            bcc=tuple(Address.from_json(a) for a in data.get("bcc", ())),
            sender=_optional(data.get("from")),
            reply_to=_optional(data.get("reply_to")),
            date=datetime.fromisoformat(data["date"]) if data.get("date") else None,
            headers=tuple((k, v) for k, v in data.get("headers", ())),
            attachments=int(data.get("attachments", 0)),
        )

    @property
    def recipients(self) -> tuple[Address, ...]:
        """Every envelope recipient, To then Cc then Bcc, each address once."""
        return unique_recipients(self.to, self.cc, self.bcc)


def attachment_count(message: Any) -> int:
    """Return how many attachments a stored ``outbox.message`` counts (0 if NULL)."""
    return 0 if message is None else int(_json(message).get("attachments", 0))


def unique_recipients(*lists: Iterable[Address]) -> tuple[Address, ...]:
    """Return the addresses of ``lists`` in order, each (ignoring case) once."""
    seen: dict[str, Address] = {}
    for addresses in lists:
        for address in addresses:
            seen.setdefault(address.address.lower(), address)
    return tuple(seen.values())


def _json(message: Any) -> dict[str, Any]:
    """Return the parsed JSON: psycopg gives jsonb as a dict, SQLite as text."""
    if isinstance(message, str):
        return json.loads(message)
    return dict(message)


def _optional(data: Mapping[str, str] | None) -> Address | None:
    """Read an optional stored address."""
    return None if data is None else Address.from_json(data)


def _is_pair(value: Any) -> bool:
    """Tell one (name, address) pair from a tuple of addresses."""
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
        and "@" not in value[0]
        and "@" in value[1]
    )


def _addresses(values: Iterable[Any] | None) -> tuple[Address, ...]:
    """Parse a list of addresses, each in any accepted form."""
    if values is None:
        return ()
    if isinstance(values, str):
        raise MessageError("a list of addresses must be a list, not one string")
    return tuple(Address.parse(v) for v in values)
