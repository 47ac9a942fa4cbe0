"""hand the outbox over to its own history: outbox.user_id goes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 08:45:00

The outbox's tables now stand alone, with no foreign key out of them, and an
alembic history of their own (``outbox migrate``, revisions in
``outbox_alembic_version``) that adopts the tables this history built. From
here on this history changes only the signup service's own tables.

The signup service keeps its link to a user's welcome mail its own way: the
welcome row's dedupe key is ``welcome:<user id>`` (which also stops a second
welcome mail while the first is unsent). Existing links are carried over.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _summary_view_sql() -> str | None:
    """Return SQLite's CREATE VIEW outbox_summary, which a table copy would break."""
    if op.get_context().dialect.name != "sqlite":
        return None
    return op.get_bind().scalar(
        sa.text(
            "SELECT sql FROM sqlite_master"
            " WHERE type = 'view' AND name = 'outbox_summary'"
        )
    )


def upgrade() -> None:
    """Carry the links into dedupe keys, then drop outbox.user_id and its FK."""
    op.execute(
        "UPDATE outbox SET dedupe_key = 'welcome:' || CAST(user_id AS TEXT)"
        " WHERE user_id IS NOT NULL AND dedupe_key IS NULL"
    )
    view = _summary_view_sql()
    if view:
        op.execute("DROP VIEW outbox_summary")
    op.drop_index("ix_outbox_user_id", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("fk_outbox_user_id_users", type_="foreignkey")
        batch.drop_column("user_id")
    if view:
        op.execute(view)


def downgrade() -> None:
    """Bring outbox.user_id and its FK back, from the welcome dedupe keys."""
    view = _summary_view_sql()
    if view:
        op.execute("DROP VIEW outbox_summary")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("user_id", BigId, nullable=True))
        batch.create_foreign_key(
            "fk_outbox_user_id_users", "users", ["user_id"], ["id"], ondelete="SET NULL"
        )
    op.create_index("ix_outbox_user_id", "outbox", ["user_id"])
    if view:
        op.execute(view)
    op.execute(
        "UPDATE outbox SET user_id = CAST(substr(dedupe_key, 9) AS BIGINT)"
        " WHERE dedupe_key LIKE 'welcome:%'"
        " AND EXISTS (SELECT 1 FROM users WHERE users.id ="
        " CAST(substr(outbox.dedupe_key, 9) AS BIGINT))"
    )
