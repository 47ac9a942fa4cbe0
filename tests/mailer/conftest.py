"""Fixtures for the mailer: relays on the test database, sending to ``smtp``."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.pool import NullPool

from mailer_service.app import create_app, db
from mailer_service.config import MailerSettings
from mailer_service.mailer import Mailer
from tests.support.databases import (
    ThrowawayCluster,
    migrate,
    require_postgres,
    url_string,
)
from tests.support.processes import MailerProcess
from tests.support.smtp import SmtpServer

# Small, fast settings: a mailer that gives up on a silent server in half a second.
FAST = MailerSettings(
    mail_timeout=0.5,
    poll_interval=0.1,
    batch_size=10,
    concurrency=1,
    lease_seconds=30,
    max_attempts=3,
    backoff_seconds=30,
    backoff_max_seconds=60,
)


@pytest.fixture
def make_mailer(database_url: URL, smtp: SmtpServer) -> Iterator[Callable[..., Mailer]]:
    """Build relays on the test's database, sending to ``smtp`` by default."""
    apps: list[Flask] = []

    def make(
        mailer_id: str | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
        **settings,
    ) -> Mailer:
        """A mailer; ``env`` adds variables, ``settings`` override FAST's fields."""
        base = {
            "DATABASE_URL": url_string(database_url),
            "MAIL_PORT": str(port or smtp.port),
        }
        apps.append(create_app({**base, **(env or {})}))
        options = {**FAST.__dict__, **settings}
        return Mailer(apps[-1], MailerSettings(**options), mailer_id, random.Random(7))

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@contextmanager
def mailers_on(
    url: URL, smtp: SmtpServer, folder: Path
) -> Iterator[Callable[..., MailerProcess]]:
    """Start mailer processes on ``url``; all of them are gone afterwards."""
    started: list[MailerProcess] = []

    def start(**env: str) -> MailerProcess:
        settings = {
            "DATABASE_URL": url_string(url),
            "MAIL_PORT": str(smtp.port),
            "MAIL_TIMEOUT": "1",
            "MAILER_LEASE_SECONDS": "4",
            "MAILER_POLL_INTERVAL": "0.05",
            "MAILER_BATCH_SIZE": "20",
            **env,
        }
        started.append(MailerProcess(folder / f"mailer-{len(started)}.log", **settings))
        return started[-1]

    try:
        yield start
    finally:
        for mailer in started:
            mailer.stop_quietly()


@pytest.fixture
def start_mailer(
    database_url, smtp, tmp_path
) -> Iterator[Callable[..., MailerProcess]]:
    """Start mailer processes on the test's database; all are gone after the test."""
    with mailers_on(database_url, smtp, tmp_path) as start:
        yield start


@pytest.fixture
def start_cluster_mailer(
    cluster, smtp, tmp_path
) -> Iterator[Callable[..., MailerProcess]]:
    """Start mailer processes on the test's own cluster, which it may stop."""
    with mailers_on(cluster.url, smtp, tmp_path) as start:
        yield start


@pytest.fixture
def cluster_engine(cluster) -> Iterator[Engine]:
    """An engine on the test's own cluster that holds no connection between uses."""
    engine = create_engine(cluster.url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    """A PostgreSQL server of this test's own, migrated, that it may stop."""
    try:
        cluster = ThrowawayCluster()
    except RuntimeError as err:
        if require_postgres():
            pytest.fail(f"cannot run a throwaway cluster: {err}", pytrace=False)
        pytest.skip(f"cannot run a throwaway cluster: {err}")
    try:
        cluster.start()
        migrate(cluster.url)
        yield cluster
    finally:
        cluster.remove()
