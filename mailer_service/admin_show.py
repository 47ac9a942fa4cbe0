"""``outbox show ID`` and ``outbox migrate``: one row, whole; and the outbox's tables.

``show`` prints a row's delivery state, its headers, every recipient with its
outcome (accepted, refused with the server's reply, suppressed, or not yet
known), its attachments by size and its attempt history; ``--json`` prints
the same for machines. ``migrate`` installs or upgrades the outbox's tables
on ``DATABASE_URL`` through the outbox's own migration history, which never
touches an app's.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from mailer_service.database import cli_database as database
from outbox_contract import migrate as outbox_migrate
from outbox_contract.message import MessageError, StoredEnvelope


def recipient_outcomes(row: Any) -> list[dict[str, Any]]:
    """Return each recipient of ``row`` with its kind and what became of it."""
    envelope = StoredEnvelope.from_row(row.recipient, row.message)
    refused = _json(row.refused) or {}
    by_address = {address.lower(): reply for address, reply in refused.items()}
    found = []
    for kind, addresses in (
        ("to", envelope.to),
        ("cc", envelope.cc),
        ("bcc", envelope.bcc),
    ):
        for address in addresses:
            reply = by_address.get(address.address.lower())
            if reply is not None and reply[0] is None:
                outcome, code, text = "suppressed", None, None
            elif reply is not None:
                outcome, code, text = "refused", reply[0], reply[1]
            elif row.status == "sent":
                outcome, code, text = "accepted", None, None
            else:
                outcome, code, text = row.status, None, None
            found.append(
                {
                    "kind": kind,
                    "name": address.name,
                    "address": address.address,
                    "outcome": outcome,
                    "code": code,
                    "reply": text,
                }
            )
    return found


def describe(row: Any, attachments: list[Any], attempts: list[Any]) -> dict[str, Any]:
    """Return everything ``outbox show`` tells of a row, JSON-ready."""
    try:
        envelope = StoredEnvelope.from_row(row.recipient, row.message)
        recipients = recipient_outcomes(row)
    except (MessageError, KeyError, ValueError) as err:  # a row written by hand
        raise click.ClickException(
            f"outbox row {row.id} is unreadable: {err}"
        ) from None
    return {
        "id": row.id,
        "status": row.status,
        "priority": row.priority,
        "attempts": row.attempts,
        "created_at": _time(row.created_at),
        "available_at": _time(row.available_at),
        "last_attempt_at": _time(row.last_attempt_at),
        "sent_at": _time(row.sent_at),
        "last_error": row.last_error,
        "dedupe_key": row.dedupe_key,
        "message_id": row.message_id,
        "subject": row.subject,
        "from": envelope.sender.formatted() if envelope.sender else None,
        "reply_to": envelope.reply_to.formatted() if envelope.reply_to else None,
        "date": _time(envelope.date),
        "headers": [list(pair) for pair in envelope.headers],
        "recipients": recipients,
        "body_text_chars": len(row.body_text or ""),
        "body_html_chars": None if row.body_html is None else len(row.body_html),
        "attachments": [
            {
                "filename": part.filename,
                "content_type": part.content_type,
                "disposition": part.disposition,
                "bytes": part.size,
            }
            for part in attachments
        ],
        "history": [
            {
                "attempt": a.attempt,
                "started_at": _time(a.started_at),
                "ended_at": _time(a.ended_at),
                "worker": a.worker,
                "result": a.result,
                "smtp_code": a.smtp_code,
                "enhanced_code": a.enhanced_code,
                "error": a.error,
                "refused": _json(a.refused),
            }
            for a in attempts
        ],
    }


@click.command()
@click.argument("row_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show(row_id: int, as_json: bool) -> None:
    """Show one outbox row: its state, headers, recipients and their outcomes."""
    with database() as (engine, queries), engine.begin() as connection:
        row = connection.execute(queries["show_row"], {"id": row_id}).first()
        if row is None:
            raise click.ClickException(f"no outbox row {row_id}")
        parts = connection.execute(queries["show_attachments"], {"id": row_id}).all()
        attempts = connection.execute(queries["show_attempts"], {"id": row_id}).all()
    shown = describe(row, parts, attempts)
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    for label in ("id", "status", "priority", "attempts", "created_at",
                  "available_at", "last_attempt_at", "sent_at", "last_error",
                  "dedupe_key", "message_id", "subject", "from", "reply_to",
                  "date"):  # fmt: skip
        if shown[label] is not None:
            click.echo(f"{label + ':':<17}{shown[label]}")
    for name, value in shown["headers"]:
        click.echo(f"{'header:':<17}{name}: {value}")
    click.echo("recipients:")
    for r in shown["recipients"]:
        who = f"{r['name']} <{r['address']}>" if r["name"] else r["address"]
        said = f" {r['code']} {r['reply']}" if r["code"] is not None else ""
        click.echo(f"  {r['kind']:<4} {who}  {r['outcome']}{said}")
    for part in shown["attachments"]:
        click.echo(
            f"{'attachment:':<17}{part['filename'] or '-'} ({part['content_type']},"
            f" {part['disposition']}, {part['bytes']} bytes)"
        )
    if shown["history"]:
        click.echo("history:")
    for a in shown["history"]:
        said = " ".join(
            str(v) for v in (a["smtp_code"], a["enhanced_code"], a["error"]) if v
        )
        refused = f"  refused {len(a['refused'])}" if a["refused"] else ""
        click.echo(
            f"  #{a['attempt']} {a['started_at']}  {a['result']:<10} {a['worker']}"
            f"  {said or '-'}{refused}"
        )


@click.command()
def migrate() -> None:
    """Install or upgrade the outbox's tables on DATABASE_URL.

    The outbox keeps its own migration history, versioned in the table
    outbox_alembic_version: an app's own alembic_version is never read or
    written, so it runs beside any app's own migrations.
    """
    with database() as (engine, _queries):
        outbox_migrate.run(engine)
        with engine.connect() as connection:
            revision = outbox_migrate.current_revision(connection)
    click.echo(f"outbox tables at revision {revision}")


def _json(value: Any) -> Any:
    """Read a JSON column: psycopg gives jsonb parsed, SQLite gives text."""
    return json.loads(value) if isinstance(value, str) else value


def _time(value: Any) -> str | None:
    """Render a timestamp (or SQLite's text for one) for display."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
