"""outbox last_attempt_at

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 17:50:00

``last_attempt_at`` records when the mailer last recorded an attempt's outcome
(sent, retry or failed), so "failed in the last hour" is exact instead of
inferred from ``available_at``. Existing rows get the best time known:
``sent_at`` for sent rows, ``available_at`` for other attempted rows.

``outbox_summary`` reads the new column, so it is dropped and created again
around the change (SQLite cannot alter a table a view depends on otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The statuses in lifecycle order; the LEFT JOIN keeps those with no rows.
STATUSES = """
    SELECT 1 AS position, 'pending' AS status
    UNION ALL SELECT 2, 'sending'
    UNION ALL SELECT 3, 'sent'
    UNION ALL SELECT 4, 'failed'
"""

POSTGRESQL = """
CREATE VIEW outbox_summary AS
SELECT s.status,
       count(o.id) AS total,
       CASE WHEN s.status = 'pending' THEN CAST(floor(EXTRACT(EPOCH FROM
           now() - min(CASE WHEN o.available_at <= now() THEN o.available_at END)
       )) AS bigint) END AS oldest_due_age_seconds,
       CASE WHEN s.status = 'failed' THEN count(CASE
           WHEN o.{failed_at} >= now() - interval '1 hour' THEN 1
       END) END AS failed_last_hour
FROM ({statuses}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
"""

# Times are UTC text; julianday() does the arithmetic.
SQLITE = """
CREATE VIEW outbox_summary AS
SELECT s.status,
       count(o.id) AS total,
       CASE WHEN s.status = 'pending' THEN CAST(86400 * (julianday('now') - julianday(
           min(CASE WHEN o.available_at <= strftime('%Y-%m-%d %H:%M:%f', 'now')
                    THEN o.available_at END)
       )) AS INTEGER) END AS oldest_due_age_seconds,
       CASE WHEN s.status = 'failed' THEN count(CASE
           WHEN o.{failed_at} >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')
           THEN 1
       END) END AS failed_last_hour
FROM ({statuses}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
"""


def create_summary_view(failed_at: str) -> None:
    """Create outbox_summary, counting recent failures by column ``failed_at``."""
    dialect = op.get_context().dialect.name
    template = SQLITE if dialect == "sqlite" else POSTGRESQL
    op.execute(template.format(failed_at=failed_at, statuses=STATUSES))


def upgrade() -> None:
    """Add outbox.last_attempt_at, backfill it, and count failures by it."""
    op.execute("DROP VIEW outbox_summary")
    op.add_column("outbox", sa.Column("last_attempt_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE outbox SET last_attempt_at = CASE"
        " WHEN status = 'sent' THEN sent_at ELSE available_at END"
        " WHERE attempts > 0"
    )
    create_summary_view("last_attempt_at")


def downgrade() -> None:
    """Drop outbox.last_attempt_at; the view goes back to available_at."""
    op.execute("DROP VIEW outbox_summary")
    op.drop_column("outbox", "last_attempt_at")
    create_summary_view("available_at")
