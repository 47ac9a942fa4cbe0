"""the outbox tables: outbox, outbox_send_rate, the summary view, the wake trigger

Revision ID: outbox_0001
Revises:
Create Date: 2026-12-04 08:30:00

The outbox as the signup service's history left it at its revision 0007, so
a database that history built is adopted as it stands: when ``outbox``
exists already, this revision only records itself. Anywhere else (an app's
own database) it creates the tables, with no foreign key to any other table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "outbox_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CLAIMABLE = "status IN ('pending', 'sending')"
DEDUPE = f"{CLAIMABLE} AND dedupe_key IS NOT NULL"
AUTOVACUUM = (  # vacuum after 2 % of the rows changed, not the default 20 %
    "autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02"
)

STATUSES = """
    SELECT 1 AS position, 'pending' AS status
    UNION ALL SELECT 2, 'sending'
    UNION ALL SELECT 3, 'sent'
    UNION ALL SELECT 4, 'failed'
"""

SUMMARY_POSTGRESQL = f"""
CREATE VIEW outbox_summary AS
SELECT s.status,
       count(o.id) AS total,
       CASE WHEN s.status = 'pending' THEN CAST(floor(EXTRACT(EPOCH FROM
           now() - min(CASE WHEN o.available_at <= now() THEN o.available_at END)
       )) AS bigint) END AS oldest_due_age_seconds,
       CASE WHEN s.status = 'failed' THEN count(CASE
           WHEN o.last_attempt_at >= now() - interval '1 hour' THEN 1
       END) END AS failed_last_hour
FROM ({STATUSES}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
"""

SUMMARY_SQLITE = f"""
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
FROM ({STATUSES}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
"""


def partial(where: str) -> dict[str, sa.TextClause]:
    """Return the dialect options of a partial index on ``where``."""
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def upgrade() -> None:
    """Create the outbox tables, unless the signup history made them already."""
    if sa.inspect(op.get_bind()).has_table("outbox"):
        return  # adopted as they stand
    timestamp = sa.DateTime(timezone=True)
    op.create_table(
        "outbox",
        sa.Column("id", BigId, sa.Identity(always=False), nullable=False),
        sa.Column(
            "created_at", timestamp, server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "available_at", timestamp, server_default=sa.func.now(), nullable=False
        ),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("locked_until", timestamp, nullable=True),
        sa.Column("locked_by", sa.Text(), nullable=True),
        sa.Column("sent_at", timestamp, nullable=True),
        sa.Column("last_attempt_at", timestamp, nullable=True),
        sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column("send_started_at", timestamp, nullable=True),
        sa.Column("recipient_hash", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(status = 'sending')"
            " = (locked_by IS NOT NULL AND locked_until IS NOT NULL)",
            name=op.f("ck_outbox_lease_matches_status"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed')",
            name=op.f("ck_outbox_status"),
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_outbox_attempts_not_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
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
    if op.get_context().dialect.name == "sqlite":
        op.execute(SUMMARY_SQLITE)
        return
    op.execute(SUMMARY_POSTGRESQL)
    op.execute(f"ALTER TABLE outbox SET ({AUTOVACUUM})")
    # Wake the mailers when mail is committed (SQLite has no NOTIFY: it polls).
    op.execute(
        """
        CREATE FUNCTION outbox_notify_due() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox_due', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify_due AFTER INSERT ON outbox"
        " FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify_due()"
    )


def downgrade() -> None:
    """Drop the outbox tables, their view and their trigger."""
    op.execute("DROP VIEW IF EXISTS outbox_summary")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS outbox_notify_due ON outbox")
        op.execute("DROP FUNCTION IF EXISTS outbox_notify_due()")
    op.drop_table("outbox_send_rate")
    op.drop_table("outbox")
