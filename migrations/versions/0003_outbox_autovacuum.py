"""outbox autovacuum

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 17:25:00

The outbox is a queue: every delivery updates a row two or three times, so dead
tuples pile up in the few pages that hold due rows while the bulk of the table
(old sent rows) sits still. PostgreSQL's default waits for 20 % of the whole
table to be dead before it vacuums, which lets the due-rows index bloat and
claims slow down. Vacuum and analyze the outbox after 2 % instead. (Deleting
old sent rows is ``outbox purge``'s job.) SQLite has no autovacuum to tune.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTINGS = ("autovacuum_vacuum_scale_factor", "autovacuum_analyze_scale_factor")
SCALE_FACTOR = 0.02  # fraction of the table's rows that may be dead before vacuum


def upgrade() -> None:
    """Make autovacuum visit the outbox after 2 % of its rows changed."""
    if op.get_context().dialect.name == "postgresql":
        values = ", ".join(f"{name} = {SCALE_FACTOR}" for name in SETTINGS)
        op.execute(f"ALTER TABLE outbox SET ({values})")


def downgrade() -> None:
    """Return the outbox to the server's autovacuum defaults."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE outbox RESET ({', '.join(SETTINGS)})")
