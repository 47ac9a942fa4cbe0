"""The signup service's own commands, run with ``flask --app signup_service``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from signup_service.database import db
from signup_service.idempotency import purge_expired


@click.command("purge-idempotency-keys")
@with_appcontext
def purge_idempotency_keys() -> None:
    """Delete the Idempotency-Keys older than 24 hours (run it daily, say)."""
    purged = purge_expired(db.session)
    db.session.commit()
    click.echo(f"purged {purged} expired idempotency keys")


def init_app(app: Flask) -> None:
    """Register the commands on ``app``'s ``flask`` CLI."""
    app.cli.add_command(purge_idempotency_keys)
