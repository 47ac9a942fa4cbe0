"""wake only waiting mailers: NOTIFY while outbox_waiters has a row

Revision ID: outbox_0004
Revises: outbox_0003
Create Date: 2026-12-04 10:00:00

A transaction that ran NOTIFY takes a cluster-wide lock at commit and holds
it until its commit record is flushed (PreCommit_Notify), so notifying
producers cannot share a WAL flush: measured with pgbench, 16 clients, that
halved the signup-shaped commits per second. An idle mailer's listener now
puts a row in ``outbox_waiters`` (unlogged), takes it out when woken, and the
trigger notifies only while a row is there. Under load every mailer is busy,
the table is empty, and no producer transaction notifies.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "outbox_0004"
down_revision: str | None = "outbox_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GATED = """
CREATE OR REPLACE FUNCTION outbox_notify_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM outbox_waiters) THEN
        PERFORM pg_notify('outbox_due', '');
    END IF;
    RETURN NULL;
END
$$
"""

ALWAYS = """
CREATE OR REPLACE FUNCTION outbox_notify_due() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_due', '');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    """Create outbox_waiters and make the trigger notify only while it has rows."""
    op.create_table(
        "outbox_waiters",
        sa.Column("pid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("worker", sa.Text(), nullable=False),
        sa.Column(
            "since",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("pid", name=op.f("pk_outbox_waiters")),
    )
    if op.get_context().dialect.name == "postgresql":
        # Nothing here needs to survive a crash: listeners register again.
        op.execute("ALTER TABLE outbox_waiters SET UNLOGGED")
        op.execute(GATED)


def downgrade() -> None:
    """Notify on every insert again, and drop outbox_waiters."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(ALWAYS)
    op.drop_table("outbox_waiters")
