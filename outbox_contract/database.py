"""Engines on ``DATABASE_URL``: the options each database needs, set per engine.

Whoever creates an engine (Flask-SQLAlchemy in a service, the admin CLI,
alembic, a test) calls :func:`prepare_engine` on it; nothing here registers a
process-wide listener, so no engine is changed behind its owner's back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError

from outbox_contract.settings import database_url

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT = 30  # seconds a writer waits for the SQLite lock

TEST_AFTER_REST = 1.0  # seconds in the pool after which a connection is tested

POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 10,  # seconds to establish a connection
    "keepalives": 1,
    "keepalives_idle": 30,  # seconds of silence before the first probe
    "keepalives_interval": 10,  # seconds between probes
    "keepalives_count": 3,  # unanswered probes before the connection is dead
    # No server-side prepared statements: behind PgBouncer's transaction pooling
    # another client's server connection would already hold the same name
    # (DuplicatePreparedStatement). psycopg prepares after 5 executions.
    "prepare_threshold": None,
}


def engine_options(url: URL) -> dict[str, Any]:
    """Return create_engine() options suited to the database behind ``url``."""
    # SQLAlchemy's error messages would otherwise carry the bound values, and
    # so recipients and mail bodies, into every logged traceback.
    private = {"hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        # The signup workers and the mailer share one file: wait for the lock
        # instead of failing with "database is locked".
        return {**private, "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
    # No pool_pre_ping: prepare_engine tests only connections that rested.
    return {**private, "connect_args": postgres_connect_args(url)}


def postgres_connect_args(url: URL) -> dict[str, Any]:
    """Return libpq's timeout and keepalive options, minus those the URL sets.

    A server that vanishes from the network (no RST) would otherwise hang a
    connect for minutes and a query for as long as TCP retries: give up on
    connecting after a while, and notice a dead peer within about a minute.
    A ``prepare_threshold`` in the URL wins, read as a number (or ``None``):
    URL query values arrive as strings, which psycopg would refuse.
    """
    args = {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in url.query}
    if "prepare_threshold" in url.query:
        value = str(url.query["prepare_threshold"]).strip()
        args["prepare_threshold"] = (
            None if value.lower() in {"", "none", "null"} else int(value)
        )
    return args


def prepare_engine(engine: Engine) -> Engine:
    """Attach the per-connection set-up ``engine``'s database needs; return it."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    else:
        event.listen(engine, "checkin", _note_rest)
        event.listen(engine, "checkout", _test_if_rested)
        event.listen(engine, "do_connect", _StartupOptions())
    return engine


class _StartupOptions:
    """Connect; if a pooler refuses the ``options`` start-up parameter, drop it.

    PgBouncer answers "unsupported startup parameter: options", and the
    mailer's sessions ask for asynchronous commit that way. Once refused, the
    engine connects without it from then on, and says so once.
    """

    def __init__(self) -> None:
        self.refused = False

    def __call__(self, dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        """Open a DBAPI connection, without ``options`` if the server refuses it."""
        dbapi = dialect.loaded_dbapi
        if self.refused:
            cparams.pop("options", None)
            return dbapi.connect(*cargs, **cparams)
        try:
            return dbapi.connect(*cargs, **cparams)
        except dbapi.OperationalError as err:
            if "options" not in cparams or "unsupported startup parameter" not in str(
                err
            ):
                raise
        self.refused = True
        logger.warning(
            "the database (a pooler such as PgBouncer) refused start-up options;"
            " connecting without them: commits are synchronous unless the role"
            " sets synchronous_commit = off",
            extra={"action": "startup_options_refused"},
        )
        cparams.pop("options")
        return dbapi.connect(*cargs, **cparams)


def _note_rest(_dbapi_connection: Any, record: Any) -> None:
    """Remember when a connection went back to the pool."""
    record.info["rested_since"] = time.monotonic()


def _test_if_rested(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Test a connection that rested in the pool before handing it out.

    A restarted server leaves dead connections in the pool. Testing every
    checkout (pool_pre_ping) costs a round trip per request; a connection that
    was in use a moment ago is alive, so only one that rested is tested. A
    dead one is replaced: the pool retries on DisconnectionError.
    """
    rested_since = record.info.get("rested_since")
    if rested_since is None or time.monotonic() - rested_since < TEST_AFTER_REST:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as err:  # any driver error means: not usable
        raise DisconnectionError(f"pooled connection is dead: {err}") from err


def make_engine(environ: Mapping[str, str] = os.environ, **options: Any) -> Engine:
    """Return a prepared engine on ``DATABASE_URL`` (``options`` win)."""
    url = database_url(environ)
    return prepare_engine(create_engine(url, **{**engine_options(url), **options}))


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Turn on WAL and foreign keys for one SQLite connection.

    WAL lets the signup workers keep writing while the mailer reads, and SQLite
    only enforces foreign keys when asked to, per connection.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def first_line(err: Exception) -> str:
    """Return the first line of what the database (the driver) said."""
    lines = str(getattr(err, "orig", None) or err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
