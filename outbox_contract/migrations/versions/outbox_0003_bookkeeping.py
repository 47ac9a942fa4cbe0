"""bookkeeping: attempt history, the suppression list, cancelled and suppressed rows

Revision ID: outbox_0003
Revises: outbox_0002
Create Date: 2026-12-04 09:30:00

- ``outbox_attempts``: one row per delivery attempt, written with the outcome.
- ``outbox_suppressions``: addresses never given to SMTP (hard bounces, or by
  hand), checked at send time.
- ``outbox.status`` may also be ``cancelled`` (stopped before it was sent) or
  ``suppressed`` (every recipient suppressed: nothing was sent).
- ``outbox.bypass_suppression``: a producer's "send even so", for one message.
- ``outbox_summary`` lists the two new statuses too.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "outbox_0003"
down_revision: str | None = "outbox_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
OLD = ("pending", "sending", "sent", "failed")
NEW = (*OLD, "cancelled", "suppressed")

SUMMARY = {
    "postgresql": """
CREATE VIEW outbox_summary AS
SELECT s.status,
       count(o.id) AS total,
       CASE WHEN s.status = 'pending' THEN CAST(floor(EXTRACT(EPOCH FROM
           now() - min(CASE WHEN o.available_at <= now() THEN o.available_at END)
       )) AS bigint) END AS oldest_due_age_seconds,
       CASE WHEN s.status = 'failed' THEN count(CASE
           WHEN o.last_attempt_at >= now() - interval '1 hour' THEN 1
       END) END AS failed_last_hour
FROM ({statuses}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
""",
    "sqlite": """
CREATE VIEW outbox_summary AS
SELECT s.status,
       count(o.id) AS total,
       CASE WHEN s.status = 'pending' THEN CAST(86400 * (julianday('now') - julianday(
           min(CASE WHEN o.available_at <= strftime('%Y-%m-%d %H:%M:%f', 'now')
                    THEN o.available_at END)
       )) AS INTEGER) END AS oldest_due_age_seconds,
       CASE WHEN s.status = 'failed' THEN count(CASE
           WHEN o.last_attempt_at >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')
           THEN 1
       END) END AS failed_last_hour
FROM ({statuses}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
""",
}


def statuses_sql(statuses: tuple[str, ...]) -> str:
    """Return a SELECT of (position, status), one row per status, in order."""
    rows = [f"SELECT {i} AS position, '{s}' AS status" if i == 1 else
            f"SELECT {i}, '{s}'" for i, s in enumerate(statuses, 1)]  # fmt: skip
    return "\n    UNION ALL ".join(rows)


def status_check(statuses: tuple[str, ...]) -> str:
    """Return the CHECK of outbox.status for ``statuses``."""
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def set_statuses(new: tuple[str, ...]) -> None:
    """Let outbox.status take ``new``, and recreate the summary view for them."""
    dialect = op.get_context().dialect.name
    op.execute("DROP VIEW outbox_summary")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch.create_check_constraint("status", status_check(new))
    op.execute(SUMMARY[dialect].format(statuses=statuses_sql(new)))


def upgrade() -> None:
    """Create the two tables, add the column, widen the statuses."""
    timestamp = sa.DateTime(timezone=True)
    op.add_column(
        "outbox",
        sa.Column(
            "bypass_suppression",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
        ),
    )
    set_statuses(NEW)
    op.create_table(
        "outbox_attempts",
        sa.Column("id", BigId, sa.Identity(always=False), nullable=False),
        sa.Column("outbox_id", BigId, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", timestamp, nullable=False),
        sa.Column("ended_at", timestamp, nullable=False),
        sa.Column("worker", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("smtp_code", sa.SmallInteger(), nullable=True),
        sa.Column("enhanced_code", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("refused", Json, nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_outbox_attempts_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_attempts")),
    )
    op.create_index(
        op.f("ix_outbox_attempts_outbox_id"), "outbox_attempts", ["outbox_id"]
    )
    op.create_table(
        "outbox_suppressions",
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("smtp_code", sa.SmallInteger(), nullable=True),
        sa.Column("enhanced_code", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column(
            "created_at", timestamp, server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_outbox_suppressions")),
    )


def downgrade() -> None:
    """Drop the tables and the column; cancelled and suppressed rows become failed."""
    op.drop_table("outbox_suppressions")
    op.drop_index(op.f("ix_outbox_attempts_outbox_id"), "outbox_attempts")
    op.drop_table("outbox_attempts")
    op.execute(
        "UPDATE outbox SET status = 'failed'"
        " WHERE status IN ('cancelled', 'suppressed')"
    )
    set_statuses(OLD)
    view = op.get_bind().dialect.name == "sqlite"
    if view:
        op.execute("DROP VIEW outbox_summary")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("bypass_suppression")
    if view:
        op.execute(SUMMARY["sqlite"].format(statuses=statuses_sql(OLD)))
