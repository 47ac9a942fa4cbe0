"""The migrations build exactly the schema the models declare, both ways."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import URL, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from outbox_contract.schema import Base
from tests.support.databases import migrate


def tables(url: URL) -> set[str]:
    """Return the names of the tables in ``url``, alembic's own excluded."""
    engine = create_engine(url, poolclass=NullPool)
    names = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return names


def drift(url: URL) -> list:
    """Return what autogenerate would change to make ``url`` match the models."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


TABLES = {"users", "outbox", "outbox_send_rate", "idempotency_keys"}


def test_migrations_upgrade_downgrade_upgrade(empty_url):
    migrate(empty_url)
    assert tables(empty_url) == {
        "users",
        "outbox",
        "outbox_send_rate",
        "idempotency_keys",
    }

    migrate(empty_url, "downgrade", "base")
    assert tables(empty_url) == set()

    migrate(empty_url, "upgrade", "head")
    assert tables(empty_url) == {
        "users",
        "outbox",
        "outbox_send_rate",
        "idempotency_keys",
    }


def test_migrations_match_the_models(empty_url):
    migrate(empty_url)

    assert drift(empty_url) == []


def test_drift_check_notices_a_missing_index(empty_url):
    """The no-drift test above can fail: an index dropped by hand is noticed."""
    migrate(empty_url)
    run_sql(empty_url, "DROP INDEX ix_outbox_user_id")

    assert [d[0] for d in drift(empty_url)] == ["add_index"]


def run_sql(url: URL, sql: str) -> None:
    """Run one statement in its own transaction."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_outbox_autovacuum_is_tuned_and_reset(empty_url):
    def reloptions() -> list[str] | None:
        engine = create_engine(empty_url, poolclass=NullPool)
        with engine.connect() as connection:
            options = connection.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'outbox'")
            ).scalar()
        engine.dispose()
        return options

    migrate(empty_url)
    assert sorted(reloptions()) == [
        "autovacuum_analyze_scale_factor=0.02",
        "autovacuum_vacuum_scale_factor=0.02",
    ]

    migrate(empty_url, "downgrade", "0002")
    assert reloptions() is None
