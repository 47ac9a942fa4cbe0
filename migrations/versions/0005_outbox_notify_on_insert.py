"""outbox notify on insert

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 08:40:00

Wake the mailers the moment mail is committed, instead of at their next poll.
A statement-level trigger sends ``NOTIFY outbox_due`` after every INSERT into
the outbox, whoever inserts: the signup service, another producer, or someone
in psql. PostgreSQL delivers the notification only when the transaction
commits, and folds identical notifications of one transaction into one, so a
1,000-row insert is one wake-up. SQLite has no NOTIFY: its mailer polls.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the function and the AFTER INSERT ... FOR EACH STATEMENT trigger."""
    if op.get_context().dialect.name != "postgresql":
        return
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
    """Drop the trigger and its function."""
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_notify_due ON outbox")
    op.execute("DROP FUNCTION outbox_notify_due()")
