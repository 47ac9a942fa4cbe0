"""whole messages: outbox.message, outbox.refused and outbox_attachments

Revision ID: outbox_0002
Revises: outbox_0001
Create Date: 2026-12-04 08:40:00

- ``outbox.message`` holds a whole message beyond the plain columns (sender,
  every recipient with its display name, Reply-To, Date, extra headers) as
  versioned JSON; NULL keeps a row the plain message it always was.
- ``outbox.refused`` records the recipients a server refused while it
  accepted the message for others.
- ``outbox_attachments`` holds attachments apart, so the claim reads no blob.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "outbox_0002"
down_revision: str | None = "outbox_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    """Add the two JSON columns and the attachments table."""
    op.add_column("outbox", sa.Column("message", Json, nullable=True))
    op.add_column("outbox", sa.Column("refused", Json, nullable=True))
    op.create_table(
        "outbox_attachments",
        sa.Column("id", BigId, sa.Identity(always=False), nullable=False),
        sa.Column("outbox_id", BigId, nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("disposition", sa.Text(), nullable=False),
        sa.Column("headers", Json, nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_outbox_attachments_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_attachments")),
    )
    op.create_index(
        op.f("ix_outbox_attachments_outbox_id"), "outbox_attachments", ["outbox_id"]
    )


def downgrade() -> None:
    """Drop the attachments table and the two columns."""
    op.drop_index(op.f("ix_outbox_attachments_outbox_id"), "outbox_attachments")
    op.drop_table("outbox_attachments")
    # SQLite copies the table to drop a column, and a view on it would break.
    view = None
    if op.get_context().dialect.name == "sqlite":
        view = op.get_bind().scalar(
            sa.text("SELECT sql FROM sqlite_master WHERE name = 'outbox_summary'")
        )
        op.execute("DROP VIEW outbox_summary")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("refused")
        batch.drop_column("message")
    if view:
        op.execute(view)
