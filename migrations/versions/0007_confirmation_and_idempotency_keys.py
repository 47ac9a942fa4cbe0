"""users.confirmed_at and idempotency_keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 10:00:00

``users.confirmed_at`` records when a user confirmed the address the welcome
mail went to (double opt-in); existing users stay unconfirmed. The
``idempotency_keys`` table keeps the first answer to each ``POST /signup``
that carried an ``Idempotency-Key`` header, for 24 hours; it references the
user that request created, and goes with that user.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add users.confirmed_at and create idempotency_keys."""
    op.add_column("users", sa.Column("confirmed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("response_status", sa.SmallInteger(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_user_id"), "idempotency_keys", ["user_id"]
    )
    op.create_index(
        op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"]
    )


def downgrade() -> None:
    """Drop idempotency_keys and users.confirmed_at."""
    op.drop_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys")
    op.drop_index(op.f("ix_idempotency_keys_user_id"), "idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_column("users", "confirmed_at")
