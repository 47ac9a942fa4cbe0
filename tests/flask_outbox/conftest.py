"""Fixtures for flask_outbox: shop apps on the test's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import URL

from flask_outbox import Outbox
from tests.flask_outbox.shops import Shop, shop_config


@pytest.fixture
def make_shop(database_url: URL) -> Iterator[Callable[..., Shop]]:
    """Build shop apps on the test's database (``config`` adds keys); dispose after."""
    shops: list[Shop] = []

    def make(outbox: Outbox | None = None, **config: Any) -> Shop:
        """Build one app: SQLAlchemy, then Mail, then Outbox, as documented."""
        app = Flask(__name__)
        app.config.update(shop_config(database_url, **config))
        db = SQLAlchemy()
        db.init_app(app)
        mail = Mail(app)
        outbox = outbox if outbox is not None else Outbox()
        outbox.init_app(app, db)
        shops.append(Shop(app, db, mail, outbox))
        return shops[-1]

    yield make
    for shop in shops:
        with shop.app.app_context():
            shop.db.engine.dispose()
