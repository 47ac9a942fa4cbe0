"""Alembic environment of the outbox's own history (``outbox migrate``).

It keeps its revision in ``outbox_alembic_version``, never in an app's
``alembic_version``, and looks only at the outbox's tables: an app's own
tables in the same database are invisible to it, in upgrades and in
autogenerate alike. :mod:`outbox_contract.migrate` hands in the connection.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from outbox_contract.schema import OUTBOX_VERSION_TABLE, OutboxBase

target_metadata = OutboxBase.metadata


def include_object(
    _object: Any, name: str | None, type_: str, _reflected: bool, _compare: Any
) -> bool:
    """Look at the outbox's own tables only, never at the app's."""
    return type_ != "table" or name in target_metadata.tables


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    version_table=OUTBOX_VERSION_TABLE,
    include_object=include_object,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
