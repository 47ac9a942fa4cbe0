"""Pooled PostgreSQL connections: a dead one that rested is replaced, not used."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import URL, create_engine, text

from outbox_contract.database import TEST_AFTER_REST, engine_options, prepare_engine

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def test_a_rested_connection_whose_server_side_died_is_replaced(
    database_url: URL, postgres_server
) -> None:
    engine = prepare_engine(create_engine(database_url, **engine_options(database_url)))
    try:
        with engine.connect() as connection:
            first_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with postgres_server.admin.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        time.sleep(TEST_AFTER_REST + 0.2)  # the pooled connection rests

        with engine.connect() as connection:
            second_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    finally:
        engine.dispose()

    assert second_pid != first_pid
