"""Fixtures for the examples: an app's own database and the converted shop on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import URL

from tests.examples.shop import OUTBOX_APP, load_example, outbox_migrate
from tests.support.databases import url_string


@pytest.fixture
def shop_url(empty_url: URL, tmp_path: Path) -> URL:
    """An app's own empty database, given the outbox's tables by ``outbox migrate``."""
    outbox_migrate(empty_url, tmp_path)
    return empty_url


@pytest.fixture
def shop_app(shop_url: URL) -> Iterator[Flask]:
    """The converted example shop on ``shop_url``, its own tables made by init-db."""
    example = load_example(OUTBOX_APP)
    app = example.create_app(
        {"SQLALCHEMY_DATABASE_URI": url_string(shop_url), "TESTING": True}
    )
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    yield app
    with app.app_context():
        example.db.engine.dispose()
