"""Throwaway shop apps for flask_outbox tests, and SQL readers for what they queued."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import URL, Engine, text

from flask_outbox import Outbox
from tests.support.databases import url_string
from tests.support.processes import free_port


@dataclass
class Shop:
    """One throwaway app and its three extensions."""

    app: Flask
    db: SQLAlchemy
    mail: Mail
    outbox: Outbox


def shop_config(url: URL, **config: Any) -> dict[str, Any]:
    """Return a shop's config; SMTP points at a closed port, so a send would fail."""
    return {
        "SQLALCHEMY_DATABASE_URI": url_string(url),
        "MAIL_DEFAULT_SENDER": "Shop <shop@example.com>",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": free_port(),
        **config,
    }


def count(engine: Engine, table: str) -> int:
    """Return the number of rows in ``table``."""
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def queued_rows(engine: Engine) -> list[dict[str, Any]]:
    """Return every outbox row, its ``message`` JSON parsed, in id order."""
    with engine.connect() as connection:
        result = connection.execute(text("SELECT * FROM outbox ORDER BY id"))
        rows = [dict(row) for row in result.mappings()]
    for row in rows:
        row["message"] = parsed(row["message"])
    return rows


def attachment_rows(engine: Engine) -> list[dict[str, Any]]:
    """Return every outbox_attachments row, ``headers`` parsed, in send order."""
    with engine.connect() as connection:
        result = connection.execute(
            text("SELECT * FROM outbox_attachments ORDER BY outbox_id, position")
        )
        rows = [dict(row) for row in result.mappings()]
    for row in rows:
        row["headers"] = parsed(row["headers"])
    return rows


def parsed(value: Any) -> Any:
    """Parse JSON: psycopg returns jsonb already parsed, SQLite returns text."""
    return json.loads(value) if isinstance(value, str) else value
