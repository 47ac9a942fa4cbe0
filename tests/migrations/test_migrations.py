"""The migrations build exactly the schema the models declare, both ways.

Two histories: the signup service's (``migrations/``, ``alembic_version``),
which built the outbox tables up to its revision 0007 and handed them over
in 0008, and the outbox's own (``outbox migrate``, ``outbox_alembic_version``).
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import URL, MetaData, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from outbox_contract import migrate as outbox_migrate
from outbox_contract.schema import OUTBOX_VERSION_TABLE, AppBase, OutboxBase
from tests.support.databases import migrate

APP_TABLES = {"users", "idempotency_keys"}
OUTBOX_TABLES = {
    "outbox",
    "outbox_send_rate",
    "outbox_attachments",
    "outbox_attempts",
    "outbox_suppressions",
    "outbox_waiters",
}
VERSION_TABLES = {"alembic_version", OUTBOX_VERSION_TABLE}


def tables(url: URL) -> set[str]:
    """Return the names of the tables in ``url``, the version tables excluded."""
    engine = create_engine(url, poolclass=NullPool)
    names = set(inspect(engine).get_table_names()) - VERSION_TABLES
    engine.dispose()
    return names


def drift(url: URL, metadata: MetaData) -> list:
    """Return what autogenerate would change in ``metadata``'s tables of ``url``."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": lambda _o, name, type_, *_: (
                    type_ != "table" or name in metadata.tables
                ),
            },
        )
        diff = compare_metadata(context, metadata)
    engine.dispose()
    return diff


def run_sql(url: URL, sql: str) -> object:
    """Run one statement in its own transaction; return its first value."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        result = connection.execute(text(sql))
        value = result.scalar() if result.returns_rows else None
    engine.dispose()
    return value


def test_migrations_upgrade_downgrade_upgrade(empty_url):
    migrate(empty_url)
    assert tables(empty_url) == APP_TABLES | OUTBOX_TABLES

    outbox_migrate.run(empty_url, "downgrade", "outbox_0001")
    assert tables(empty_url) == APP_TABLES | {"outbox", "outbox_send_rate"}
    migrate(empty_url, "downgrade", "0007")  # the outbox's user_id comes back
    migrate(empty_url, "downgrade", "base")
    assert tables(empty_url) == set()

    migrate(empty_url)
    assert tables(empty_url) == APP_TABLES | OUTBOX_TABLES


def test_migrations_match_the_models(empty_url):
    migrate(empty_url)

    assert drift(empty_url, AppBase.metadata) == []
    assert drift(empty_url, OutboxBase.metadata) == []


def test_outbox_history_alone_matches_the_models(empty_url):
    """`outbox migrate` on an empty database builds the same outbox tables."""
    outbox_migrate.run(empty_url)

    assert tables(empty_url) == OUTBOX_TABLES
    assert drift(empty_url, OutboxBase.metadata) == []
    outbox_migrate.run(empty_url, "downgrade", "base")
    assert tables(empty_url) == set()


def test_drift_check_notices_a_missing_index(empty_url):
    """The no-drift test above can fail: an index dropped by hand is noticed."""
    migrate(empty_url)
    run_sql(empty_url, "DROP INDEX ix_outbox_attachments_outbox_id")

    assert [d[0] for d in drift(empty_url, OutboxBase.metadata)] == ["add_index"]


def test_handover_keeps_the_welcome_link(empty_url):
    """0008 turns each outbox.user_id into the welcome row's dedupe key."""
    migrate(empty_url, "upgrade", "0007")
    run_sql(empty_url, "INSERT INTO users (id, email) VALUES (7, 'ada@example.com')")
    run_sql(
        empty_url,
        "INSERT INTO outbox (recipient, subject, body_text, message_id, user_id)"
        " VALUES ('ada@example.com', 'Welcome', 'Hi', '<1@example.com>', 7)",
    )
    migrate(empty_url)

    assert run_sql(empty_url, "SELECT dedupe_key FROM outbox") == "welcome:7"
    assert run_sql(empty_url, "SELECT count(*) FROM outbox_summary") == 6


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_outbox_autovacuum_is_tuned(empty_url):
    def reloptions() -> list[str] | None:
        return run_sql(
            empty_url, "SELECT reloptions FROM pg_class WHERE relname = 'outbox'"
        )

    outbox_migrate.run(empty_url)
    assert sorted(reloptions()) == [
        "autovacuum_analyze_scale_factor=0.02",
        "autovacuum_vacuum_scale_factor=0.02",
    ]
    outbox_migrate.run(empty_url, "downgrade", "base")
    assert reloptions() is None
