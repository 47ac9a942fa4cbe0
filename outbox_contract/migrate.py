"""``outbox migrate``: install or upgrade the outbox's tables in any database.

The outbox has an alembic history of its own, shipped inside this package
(``outbox_contract/migrations``). It records its revision in
``outbox_alembic_version`` and never reads or writes an app's
``alembic_version``, so an app with its own alembic history adds the outbox
beside it and each history moves on its own.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, pool
from sqlalchemy.engine import URL

from outbox_contract.database import prepare_engine
from outbox_contract.schema import OUTBOX_VERSION_TABLE


def alembic_config(connection: Connection) -> Config:
    """Return the alembic config of the outbox history, bound to ``connection``."""
    config = Config()
    config.set_main_option(
        "script_location", str(files("outbox_contract") / "migrations")
    )
    config.attributes["connection"] = connection
    return config


def run(
    target: URL | Engine | Connection, action: str = "upgrade", revision: str = "head"
) -> None:
    """Run ``upgrade`` or ``downgrade`` to ``revision`` in one transaction."""
    if isinstance(target, Connection):
        getattr(command, action)(alembic_config(target), revision)
        return
    engine = target if isinstance(target, Engine) else _engine(target)
    try:
        with engine.begin() as connection:
            getattr(command, action)(alembic_config(connection), revision)
    finally:
        if not isinstance(target, Engine):
            engine.dispose()


def current_revision(connection: Connection) -> str | None:
    """Return the outbox history's revision in this database, or None."""
    context = MigrationContext.configure(
        connection, opts={"version_table": OUTBOX_VERSION_TABLE}
    )
    return context.get_current_revision()


def _engine(url: URL) -> Engine:
    """Return a one-off engine on ``url``, prepared as every engine here is."""
    return prepare_engine(create_engine(url, poolclass=pool.NullPool))
