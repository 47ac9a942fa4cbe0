"""delivery controls: priority, dedupe keys, the ambiguous-send marker, redaction

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 09:00:00

- ``outbox.priority`` (smaller first) joins the due index, which now is the
  claim's exact order (priority, due time, id), so a claim reads its batch off
  the front of the index instead of sorting the whole backlog.
- ``outbox.dedupe_key`` is unique among rows not yet sent or failed (a partial
  unique index), so a producer can enqueue "at most one of these" safely.
- ``outbox.send_started_at`` marks a send in progress under
  ``MAILER_ON_AMBIGUOUS=hold``.
- ``outbox.recipient_hash`` keeps a keyed hash of a redacted recipient.
- ``outbox_send_rate`` holds the fleet-wide rate meter's single row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIMABLE = "status IN ('pending', 'sending')"
DEDUPE = f"{CLAIMABLE} AND dedupe_key IS NOT NULL"


def partial(where: str) -> dict[str, sa.TextClause]:
    """Return the dialect options of a partial index on ``where``."""
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def upgrade() -> None:
    """Add the columns, the priority-ordered due index and the rate row."""
    timestamp = sa.DateTime(timezone=True)
    op.add_column(
        "outbox",
        sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False),
    )
    op.add_column("outbox", sa.Column("dedupe_key", sa.Text()))
    op.add_column("outbox", sa.Column("send_started_at", timestamp))
    op.add_column("outbox", sa.Column("recipient_hash", sa.Text()))
    op.drop_index("ix_outbox_due", table_name="outbox")
    # The claim's exact ORDER BY: it reads its batch off the front of the index.
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["priority", "available_at", "id"],
        **partial(CLAIMABLE),
    )
    op.create_index(
        "uq_outbox_dedupe_key", "outbox", ["dedupe_key"], unique=True, **partial(DEDUPE)
    )
    rate = op.create_table(
        "outbox_send_rate",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("next_at", timestamp, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_outbox_send_rate_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_send_rate")),
    )
    op.bulk_insert(rate, [{"id": 1}])


def downgrade() -> None:
    """Drop the rate row's table, the new indexes and the columns."""
    op.drop_table("outbox_send_rate")
    op.drop_index("uq_outbox_dedupe_key", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index("ix_outbox_due", "outbox", ["available_at"], **partial(CLAIMABLE))
    for column in ("recipient_hash", "send_started_at", "dedupe_key", "priority"):
        op.drop_column("outbox", column)
