"""Fixtures shared by every test: databases, apps and an SMTP server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

from signup_service import create_app
from signup_service.database import db
from tests.support.apps import TEST_APP_ENV
from tests.support.databases import (
    PostgresServer,
    PostgresUnavailable,
    SqliteTemplate,
    migrated_postgres,
    require_postgres,
    url_string,
)
from tests.support.smtp import SmtpServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server with a migrated template database."""
    url = os.environ.get("TEST_DATABASE_URL")
    with ExitStack() as stack:
        try:
            server = stack.enter_context(
                migrated_postgres(make_url(url) if url else None)
            )
        except PostgresUnavailable as err:
            message = f"PostgreSQL unavailable: {err}"
            if require_postgres():
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    """A migrated SQLite database file to copy from."""
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[URL]:
    """A fresh, migrated PostgreSQL database for one test."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def pg_engine(pg_url: URL) -> Iterator[Engine]:
    """An engine on the test's fresh PostgreSQL database."""
    engine = create_engine(pg_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> URL:
    """A fresh, migrated database for one test, on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return request.getfixturevalue("sqlite_template").create_database(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[URL]:
    """An empty database with no tables at all, for running the migrations."""
    if request.param == "sqlite":
        yield URL.create("sqlite", database=str(tmp_path / "empty.db"))
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_empty_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def engine(database_url: URL) -> Iterator[Engine]:
    """An engine on the test's database, for checking what the services wrote."""
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def make_app_for() -> Iterator[Callable[..., Flask]]:
    """Build signup apps on a given database, disposing their engines after."""
    apps: list[Flask] = []

    def make(url: URL, **env: str) -> Flask:
        apps.append(
            create_app({"DATABASE_URL": url_string(url), **TEST_APP_ENV, **env})
        )
        return apps[-1]

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def make_app(database_url: URL, make_app_for) -> Callable[..., Flask]:
    """Build signup apps on the test's database; ``env`` adds variables."""
    return lambda **env: make_app_for(database_url, **env)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The signup app on the test's database."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the signup app."""
    return app.test_client()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that records what it accepts."""
    with SmtpServer() as server:
        yield server
