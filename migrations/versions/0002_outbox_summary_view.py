"""outbox summary view

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 16:40:12

``outbox_summary`` is for humans at a SQL prompt: one row per status, always
all four, in lifecycle order, with these columns:

- ``total``: rows in that status;
- ``oldest_due_age_seconds`` (``pending`` row only): whole seconds since the
  oldest pending row became due (``available_at <= now``), NULL when none is due;
- ``failed_last_hour`` (``failed`` row only): failed rows whose last attempt
  became due within the last hour.

The schema records no failure time, so ``failed_last_hour`` uses
``available_at``: a row's last attempt was claimed, and so failed, at or after
that time (the mailer never moves ``available_at`` when marking a row failed).
The count is therefore a lower bound that misses rows the mailer reached more
than an hour late, when it was far behind.

Autogenerate ignores views, so the models stay the one schema definition. On
SQLite a later batch migration that copies ``outbox`` must drop and recreate
this view around it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The statuses in lifecycle order; the LEFT JOIN keeps those with no rows.
STATUSES = """
    SELECT 1 AS position, 'pending' AS status
    UNION ALL SELECT 2, 'sending'
    UNION ALL SELECT 3, 'sent'
    UNION ALL SELECT 4, 'failed'
"""

POSTGRESQL = f"""
CREATE VIEW outbox_summary AS
SELECT s.status,
       count(o.id) AS total,
       CASE WHEN s.status = 'pending' THEN CAST(floor(EXTRACT(EPOCH FROM
           now() - min(CASE WHEN o.available_at <= now() THEN o.available_at END)
       )) AS bigint) END AS oldest_due_age_seconds,
       CASE WHEN s.status = 'failed' THEN count(CASE
           WHEN o.available_at >= now() - interval '1 hour' THEN 1
       END) END AS failed_last_hour
FROM ({STATUSES}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
"""

# Times are UTC text; "due" compares text exactly as the mailer's claim does,
# and julianday() does the arithmetic.
SQLITE = f"""
CREATE VIEW outbox_summary AS
SELECT s.status,
       count(o.id) AS total,
       CASE WHEN s.status = 'pending' THEN CAST(86400 * (julianday('now') - julianday(
           min(CASE WHEN o.available_at <= strftime('%Y-%m-%d %H:%M:%f', 'now')
                    THEN o.available_at END)
       )) AS INTEGER) END AS oldest_due_age_seconds,
       CASE WHEN s.status = 'failed' THEN count(CASE
           WHEN o.available_at >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')
           THEN 1
       END) END AS failed_last_hour
FROM ({STATUSES}) AS s
LEFT JOIN outbox AS o ON o.status = s.status
GROUP BY s.position, s.status
ORDER BY s.position
"""


def upgrade() -> None:
    """Create the outbox_summary view in the database's own SQL dialect."""
    dialect = op.get_context().dialect.name
    op.execute(SQLITE if dialect == "sqlite" else POSTGRESQL)


def downgrade() -> None:
    """Drop the outbox_summary view."""
    op.execute("DROP VIEW outbox_summary")
