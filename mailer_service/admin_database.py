"""The admin CLI's way into the database: an engine, the admin SQL, short errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine, TextClause
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from mailer_service.store import load_queries
from outbox_contract.database import first_line, make_engine
from outbox_contract.settings import ConfigError


@contextmanager
def database() -> Iterator[tuple[Engine, dict[str, TextClause]]]:
    """Yield an engine on ``DATABASE_URL`` and the admin SQL for its dialect.

    Only ``DATABASE_URL`` is read: a bad ``MAIL_*`` value must not keep an
    operator from looking at the outbox.
    """
    try:
        engine = make_engine(poolclass=NullPool)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    try:
        yield engine, load_queries(f"admin_{engine.dialect.name}")
    except SQLAlchemyError as err:
        # The driver's own first line names the problem; SQLAlchemy's wrapper
        # adds the statement and a link, too much for a terminal.
        raise click.ClickException(f"database error: {first_line(err)}") from None
    finally:
        engine.dispose()
