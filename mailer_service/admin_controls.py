"""``outbox cancel`` and the suppression list's commands: stopping mail by hand.

``cancel`` stops pending rows for good (through the contract's
:func:`~outbox_contract.cancel_email`, the function producers call too).
``suppress``, ``unsuppress`` and ``suppressions`` keep the list of addresses
the mailer never gives to SMTP. The list holds addresses, which are personal
data: ``outbox redact`` leaves it, since an entry is what keeps a dead
address from being mailed again; ``unsuppress`` is how one is erased.
"""

from __future__ import annotations

import json
import logging

import click
from sqlalchemy.orm import Session

from mailer_service.database import cli_database as database
from outbox_contract.cancel import cancel_email
from outbox_contract.message import Address, MessageError

logger = logging.getLogger(__name__)


@click.command()
@click.argument("ids", nargs=-1, type=click.IntRange(min=1))
@click.option("--dedupe-key", help="Cancel the pending row queued with this key.")
def cancel(ids: tuple[int, ...], dedupe_key: str | None) -> None:
    """Cancel the pending rows IDS (or the row of --dedupe-key): never send them.

    A row already sending, sent or failed is not cancelled: it is named, and
    the exit status is 1. A cancelled row keeps its history and frees its
    dedupe key.
    """
    if not ids and dedupe_key is None:
        raise click.UsageError("name the rows: IDS, or --dedupe-key KEY")
    with database() as (engine, _queries), Session(engine) as session:
        result = cancel_email(session, ids, dedupe_key=dedupe_key)
        session.commit()
    for row_id in result.cancelled:
        logger.info("cancelled", extra={"action": "cancel", "outbox_id": row_id})
    if result.cancelled:
        click.echo(
            f"cancelled {len(result.cancelled)}: "
            + " ".join(map(str, result.cancelled))
        )
    for row_id, status in result.not_cancelled.items():
        why = "does not exist" if status == "missing" else f"is {status}"
        click.echo(f"not cancelled: {row_id} {why}", err=True)
    if dedupe_key is not None and not result.cancelled and not ids:
        click.echo(
            f"not cancelled: no pending row has dedupe key {dedupe_key!r}", err=True
        )
        raise SystemExit(1)
    if result.not_cancelled:
        raise SystemExit(1)


def _address(value: str) -> str:
    """Check an address given on the command line; return it lower-cased."""
    try:
        return Address.parse(value).address.lower()
    except MessageError as err:
        raise click.BadParameter(str(err)) from None


@click.command()
@click.argument("address")
@click.option("--detail", help="Why, in a few words (kept with the entry).")
def suppress(address: str, detail: str | None) -> None:
    """Put ADDRESS on the suppression list: the mailer never sends to it."""
    address = _address(address)
    with database() as (engine, queries), engine.begin() as connection:
        added = connection.execute(
            queries["suppress"], {"address": address, "detail": detail}
        ).first()
    logger.info("suppressed by hand", extra={"action": "suppress"})
    click.echo("suppressed" if added else "already suppressed")


@click.command()
@click.argument("address")
def unsuppress(address: str) -> None:
    """Take ADDRESS off the suppression list; exit 1 if it was not on it."""
    address = _address(address)
    with database() as (engine, queries), engine.begin() as connection:
        removed = connection.execute(
            queries["unsuppress"], {"address": address}
        ).first()
    if removed is None:
        click.echo("not suppressed", err=True)
        raise SystemExit(1)
    logger.info("unsuppressed", extra={"action": "unsuppress"})
    click.echo("unsuppressed")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def suppressions(as_json: bool) -> None:
    """List the suppressed addresses, newest first, with why."""
    with database() as (engine, queries), engine.begin() as connection:
        rows = [r._asdict() for r in connection.execute(queries["suppressions"])]
    for row in rows:
        row["created_at"] = str(row["created_at"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        code = " ".join(str(v) for v in (row["smtp_code"], row["enhanced_code"]) if v)
        click.echo(
            f"{row['address']}  {row['reason']}  {code or '-'}  {row['created_at']}"
        )
