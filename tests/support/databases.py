"""Real databases for tests: a migrated template, copied fresh for every test.

PostgreSQL comes from ``TEST_DATABASE_URL`` (an admin URL; the tests create and
drop their own databases on that server). Without it, a throwaway cluster is
started when ``initdb`` and ``pg_ctl`` are on PATH (as the ``postgres`` user
when run as root, since initdb refuses root). When neither works the
PostgreSQL tests skip with the reason, unless ``OUTBOX_REQUIRE_POSTGRES`` is
true, as CI sets it: then they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from outbox_contract import migrate as outbox_migrate
from tests.support import ROOT
from tests.support.processes import free_port


def alembic_config() -> Config:
    """Return the project's alembic config, as ``alembic`` on the CLI reads it."""
    return Config(toml_file=str(ROOT / "pyproject.toml"))


def migrate(url: str | URL, action: str = "upgrade", revision: str = "head") -> None:
    """Run the signup history's ``alembic upgrade|downgrade revision`` on ``url``.

    A plain ``migrate(url)`` also runs ``outbox migrate`` afterwards, as
    ``make migrate`` does: the whole demo schema.
    """
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)
        if (action, revision) == ("upgrade", "head"):
            outbox_migrate.run(connection)
    engine.dispose()


def require_postgres() -> bool:
    """Tell whether missing PostgreSQL must fail the run instead of skipping."""
    return os.environ.get("OUTBOX_REQUIRE_POSTGRES", "").lower() in {"1", "true"}


def url_string(url: URL) -> str:
    """Render ``url`` with its password, as a child process's DATABASE_URL."""
    return url.render_as_string(hide_password=False)


class PostgresUnavailable(Exception):
    """No PostgreSQL server to test on: the one reason PostgreSQL tests may skip."""


class ThrowawayCluster:
    """A temporary PostgreSQL cluster of our own, which tests may stop and start."""

    def __init__(self) -> None:
        if not (shutil.which("initdb") and shutil.which("pg_ctl")):
            raise RuntimeError("initdb and pg_ctl are not on PATH")
        # initdb refuses to run as root; as root, run the cluster as "postgres".
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.folder = Path(tempfile.mkdtemp(prefix="outbox-pg-"))
        if self.as_owner:
            shutil.chown(self.folder, "postgres")
        self.data = str(self.folder / "data")
        self.port = free_port()
        self.url = make_url(
            f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        )
        self._pg("initdb", "-D", self.data, "-U", "postgres", "-A", "trust")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off"  # a test cluster: speed over durability
        )
        # -l sends the server's output to a file: with our pipes it would keep
        # them open, and subprocess.run would wait for the server to exit.
        log = f"{self.folder}/log"
        self._pg("pg_ctl", "-D", self.data, "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects clients, ``immediate`` crashes."""
        self._pg("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs, and delete its files."""
        subprocess.run(
            [*self.as_owner, "pg_ctl", "-D", self.data, "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pg(self, *command: str) -> None:
        """Run a PostgreSQL tool as the cluster's owner."""
        subprocess.run([*self.as_owner, *command], check=True, capture_output=True)


@contextmanager
def throwaway_cluster() -> Iterator[URL]:
    """Run a temporary PostgreSQL cluster for the length of the block."""
    cluster = ThrowawayCluster()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.remove()


class PostgresServer:
    """A PostgreSQL server where tests create a database each from a template."""

    def __init__(self, admin_url: URL) -> None:
        self.admin_url = admin_url.set(drivername="postgresql+psycopg")
        self.admin = create_engine(
            self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
        self.template = f"outbox_template_{uuid.uuid4().hex[:8]}"

    def url(self, database: str) -> URL:
        """Return the URL of ``database`` on this server."""
        return self.admin_url.set(database=database)

    def ping(self) -> None:
        """Connect once, so an unreachable server fails here and not later."""
        self._execute("SELECT 1")

    def create_template(self, revision: str = "head") -> None:
        """Create the template database and run the migrations on it once."""
        self._execute(f'CREATE DATABASE "{self.template}"')
        migrate(self.url(self.template), revision=revision)

    def create_database(self) -> URL:
        """Return a new database, a copy of the migrated template."""
        name = f"outbox_test_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self.url(name)

    def create_empty_database(self) -> URL:
        """Return a new database with no tables, for migration tests."""
        name = f"outbox_empty_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: URL) -> None:
        """Drop ``url``'s database, closing whatever still connects to it."""
        self._execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')

    def close(self) -> None:
        """Drop the template and release the admin engine."""
        self._execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        self.admin.dispose()

    def _execute(self, sql: str) -> None:
        """Run one statement outside a transaction, as CREATE DATABASE needs."""
        with self.admin.connect() as connection:
            connection.execute(text(sql))


@contextmanager
def migrated_postgres(
    admin_url: URL | None, revision: str = "head"
) -> Iterator[PostgresServer]:
    """Reach ``admin_url`` (or start a throwaway cluster) and migrate a template.

    Only a server that cannot be started or reached raises PostgresUnavailable.
    A failing migration raises its own error: it must fail the run, not skip it.
    """
    with ExitStack() as stack:
        try:
            if admin_url is None:
                admin_url = stack.enter_context(throwaway_cluster())
            server = PostgresServer(admin_url)
            server.ping()
        except (OperationalError, RuntimeError, subprocess.CalledProcessError) as err:
            raise PostgresUnavailable(str(err)) from err
        stack.callback(server.close)  # drops a half-migrated template too
        server.create_template(revision)
        yield server


class SqliteTemplate:
    """A migrated SQLite file, copied for each test."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "template.db"
        migrate(URL.create("sqlite", database=str(self.path)))

    def create_database(self, folder: Path) -> URL:
        """Copy the template into ``folder`` and return its URL."""
        path = folder / "outbox.db"
        shutil.copyfile(self.path, path)
        return URL.create("sqlite", database=str(path))
