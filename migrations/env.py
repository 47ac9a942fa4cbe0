"""Alembic environment of the signup service's history: ``users`` and its kin.

The URL comes from DATABASE_URL, the schema from ``AppBase``. The outbox's
tables have a history of their own (``outbox migrate``); this one looks only
at the signup service's tables. Tests hand in an open connection through
``config.attributes["connection"]``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from outbox_contract.database import prepare_engine
from outbox_contract.schema import AppBase
from outbox_contract.settings import database_url

target_metadata = AppBase.metadata


def include_object(
    _object: Any, name: str | None, type_: str, _reflected: bool, _compare: Any
) -> bool:
    """Look at the signup service's tables only; the outbox migrates itself."""
    return type_ != "table" or name in target_metadata.tables


def run_migrations(connection: Connection) -> None:
    """Run the migrations on ``connection`` inside one transaction."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Emit the migration SQL for ``DATABASE_URL`` without connecting."""
    context.configure(
        url=database_url().render_as_string(hide_password=False),
        target_metadata=target_metadata,
        include_object=include_object,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Connect to ``DATABASE_URL`` (or use the given connection) and migrate."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = prepare_engine(create_engine(database_url(), poolclass=pool.NullPool))
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
