"""The schema, declared once, on two MetaData objects that never refer to each other.

``OutboxBase.metadata`` holds the outbox's own tables: ``outbox``,
``outbox_attachments`` and ``outbox_send_rate``. They are the contract between
producers and the mailer, stand alone (no foreign key leaves them) and have
their own migration history (``outbox migrate``), so any app can add them to
its database beside its own tables.

``AppBase.metadata`` holds the signup service's tables, ``users`` and
``idempotency_keys``, migrated by the top-level ``migrations/`` history. They
are declared here because the migrations may import only this package.
Alembic migrations are checked against both, so a change here needs a
migration.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so alembic autogenerate never sees a rename.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The life of an outbox row: pending -> sending -> sent | failed (or back);
# pending -> cancelled (an operator or the producer stopped it); sending ->
# suppressed (every recipient is on the suppression list: nothing was sent).
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
CANCELLED, SUPPRESSED = "cancelled", "suppressed"
STATUSES = (PENDING, SENDING, SENT, FAILED, CANCELLED, SUPPRESSED)
# Rows a mailer may claim: due pending rows, and sending rows whose lease ran out.
CLAIMABLE = (PENDING, SENDING)


def _sql_list(values: tuple[str, ...]) -> str:
    """Render ``values`` as an SQL list of string literals, e.g. ``('a', 'b')``."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


# PostgreSQL channel an INSERT into the outbox notifies while a mailer waits
# (outbox_0004: only while outbox_waiters has a row).
NOTIFY_CHANNEL = "outbox_due"

# The rows among which a dedupe key is unique: mail not yet sent or failed.
DEDUPE_WHERE = f"status IN {_sql_list(CLAIMABLE)} AND dedupe_key IS NOT NULL"

# SQLite's INTEGER PRIMARY KEY is its rowid; BIGINT there would not autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)
# jsonb on PostgreSQL (queryable with ->, ->> and @>), JSON text on SQLite.
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Where the outbox history keeps its revision: never an app's alembic_version.
OUTBOX_VERSION_TABLE = "outbox_alembic_version"


class OutboxBase(DeclarativeBase):
    """The outbox's own tables; its MetaData carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AppBase(DeclarativeBase):
    """The signup service's tables, on a MetaData of their own."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(AppBase):
    """A signed-up user; ``email`` is stored lower-cased, so unique ignores case."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lower"),)

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    # Set when the user follows the link in the welcome mail (double opt-in).
    confirmed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class IdempotencyKey(AppBase):
    """The first answer to a ``POST /signup`` that carried an ``Idempotency-Key``.

    Written in the signup's own transaction and pointing at the user it
    created, so a key never exists without its user, nor that user without
    the key it was created under.
    """

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    # SHA-256 of the request's fields: a reuse with another body is refused.
    request_hash: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    response_status: Mapped[int] = mapped_column(SmallInteger)
    response_body: Mapped[str] = mapped_column(Text)
    # Serves the purge of keys older than their 24 hours.
    created_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=func.now(), index=True
    )


class Outbox(OutboxBase):
    """One email to deliver, with its delivery state.

    ``recipient``, ``subject``, ``body_text``, ``body_html`` and ``message_id``
    are the plain contract: a row with only these is sent as a message to one
    recipient. ``message`` holds the rest of a whole message (sender, every
    recipient with its display name, Reply-To, Date, extra headers, the count of
    attachments), as versioned JSON: see :mod:`outbox_contract.message`.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(f"status IN {_sql_list(STATUSES)}", name="status"),
        # A row is leased exactly while it is being sent.
        CheckConstraint(
            f"(status = '{SENDING}')"
            " = (locked_by IS NOT NULL AND locked_until IS NOT NULL)",
            name="lease_matches_status",
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # Serves the mailer's claim in exactly its ORDER BY, so a claim reads
        # its batch off the front of the index instead of sorting the backlog.
        # Partial, so the sent and failed rows of history never enter it.
        Index(
            "ix_outbox_due",
            "priority",
            "available_at",
            "id",
            postgresql_where=text(f"status IN {_sql_list(CLAIMABLE)}"),
            sqlite_where=text(f"status IN {_sql_list(CLAIMABLE)}"),
        ),
        # One row per dedupe key among the mail not yet sent or failed.
        Index(
            "uq_outbox_dedupe_key",
            "dedupe_key",
            unique=True,
            postgresql_where=text(DEDUPE_WHERE),
            sqlite_where=text(DEDUPE_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    available_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    status: Mapped[str] = mapped_column(Text, server_default=PENDING)
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text, unique=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    locked_by: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Smaller is sent first (as in Oban); 0 unless the producer says otherwise.
    priority: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    # A producer's key: enqueueing it again while the first is unsent adds nothing.
    dedupe_key: Mapped[str | None] = mapped_column(Text)
    # Written just before SMTP starts, only under MAILER_ON_AMBIGUOUS=hold.
    send_started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Keyed hash of the recipient, kept when ``outbox redact`` blanks the address.
    recipient_hash: Mapped[str | None] = mapped_column(Text)
    # The whole message beyond the plain columns (version 1); NULL: a plain row.
    message: Mapped[dict | None] = mapped_column(Json)
    # Recipients the server refused while accepting the message for others:
    # {"address": [reply code, "reply text"]}. NULL when none was refused.
    refused: Mapped[dict | None] = mapped_column(Json)
    # Send even to suppressed addresses (to re-verify one, say).
    bypass_suppression: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false")
    )


class OutboxAttempt(OutboxBase):
    """One delivery attempt of an outbox row: when, by whom, and what the server said.

    Written in the same statement as the row's outcome, so the history never
    disagrees with the row: no attempt without its recorded outcome, and no
    recorded outcome without its attempt.
    """

    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("outbox.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)  # 1 for the first
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    ended_at: Mapped[datetime] = mapped_column(Timestamp)
    worker: Mapped[str] = mapped_column(Text)
    # sent, retry, failed or suppressed: what the attempt meant for the row.
    result: Mapped[str] = mapped_column(Text)
    smtp_code: Mapped[int | None] = mapped_column(SmallInteger)
    enhanced_code: Mapped[str | None] = mapped_column(Text)  # e.g. "5.1.1"
    error: Mapped[str | None] = mapped_column(Text)
    # Recipients refused or suppressed in this attempt: {"address": [code, text]}.
    refused: Mapped[dict | None] = mapped_column(Json)


class Suppression(OutboxBase):
    """An address the mailer never gives to SMTP: it bounced hard, or by hand."""

    __tablename__ = "outbox_suppressions"

    # Lower-cased, so one entry covers every spelling.
    address: Mapped[str] = mapped_column(Text, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)  # "bounce" or "manual"
    smtp_code: Mapped[int | None] = mapped_column(SmallInteger)
    enhanced_code: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # the server's reply
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class OutboxAttachment(OutboxBase):
    """One attachment (or inline image) of an outbox row, in send order.

    Kept apart from ``outbox`` so the claim never reads a blob: the mailer
    loads a row's attachments only when it builds that row.
    """

    __tablename__ = "outbox_attachments"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("outbox.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    filename: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    # "attachment", or "inline" for an image the HTML shows by its cid:.
    disposition: Mapped[str] = mapped_column(Text)
    # The part's own headers, such as Content-ID: [["Content-ID", "<logo>"]].
    headers: Mapped[list | None] = mapped_column(Json)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Waiter(OutboxBase):
    """An idle mailer's listener, waiting to be woken (PostgreSQL; unlogged there).

    The insert trigger sends NOTIFY only while some row is here. A transaction
    that ran NOTIFY takes a cluster-wide lock at commit until its commit record
    is flushed, so producers' commits cannot share a WAL flush; under load every
    mailer is busy, this table is empty, and producers commit unhindered.
    """

    __tablename__ = "outbox_waiters"

    pid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    worker: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class SendRate(OutboxBase):
    """The fleet-wide send-rate meter: one row, shared by every mailer.

    ``next_at`` is the theoretical time of the next send (GCRA, the "virtual
    scheduling" form of a token bucket); ``MAILER_RATE_LIMIT`` moves it forward
    by one interval per message. Only used while a rate limit is set.
    """

    __tablename__ = "outbox_send_rate"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    next_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
