"""The ``outbox`` admin CLI: look at delivery state, retry failures, purge old rows.

Run it as ``outbox --help`` (or ``python -m mailer_service.admin --help``) with
the mailer's environment: it reads ``DATABASE_URL`` like the services do. It
reaches the database through :mod:`mailer_service.database` (SQL by purpose in
``queries/``); each statement is its own short transaction and touches only
``failed`` or ``sent`` rows, which no mailer writes, so every command is safe
while mailers run.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import click

from mailer_service.admin_controls import cancel, suppress, suppressions, unsuppress
from mailer_service.admin_show import migrate, show
from mailer_service.database import cli_database as _database
from mailer_service.formatting import format_age
from mailer_service.retention import (
    DEFAULT_BATCH_SIZE,
    purge_sent,
    recipient_hash,
    redact_sent,
    redaction_key,
)
from outbox_contract.database import make_engine
from outbox_contract.logs import configure_logging
from outbox_contract.settings import ConfigError
from outbox_contract.summary import read_summary

logger = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # seconds per duration unit
_DURATION = re.compile(r"(\d+)([smhd])")


class Duration(click.ParamType):
    """A positive span of time like ``45s``, ``30m``, ``12h`` or ``30d``, in seconds."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        """Return the duration in seconds, or fail with a usage error."""
        if isinstance(value, int):
            return value  # already converted, as click may pass defaults again
        match = _DURATION.fullmatch(str(value).strip().lower())
        if match is None or int(match[1]) == 0:
            self.fail(
                f"{value!r} is not a positive duration like 45s, 30m, 12h or 30d",
                param,
                ctx,
            )
        return int(match[1]) * _UNITS[match[2]]


def old_sent_rows_options(
    verb: str, done: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add --sent-older-than and --batch-size to a command over old sent rows."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        """Apply both options to ``command``."""
        command = click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=DEFAULT_BATCH_SIZE,
            show_default=True,
            help=f"Rows {done} per transaction.",
        )(command)
        return click.option(
            "--sent-older-than",
            "older_than",
            type=Duration(),
            required=True,
            help=f"{verb} sent rows delivered longer ago than this, e.g. 30d, 12h.",
        )(command)

    return decorate


def _redaction_key() -> bytes:
    """Return MAILER_REDACTION_KEY, or stop the command with its error."""
    try:
        return redaction_key()
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


@click.group()
def cli() -> None:
    """Inspect and repair the email outbox (reads DATABASE_URL)."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(as_json: bool) -> None:
    """Show rows per status and the oldest due row's age.

    Reads the outbox_summary view: rows per status, how long the oldest due
    pending row has waited (a pending row is due once its available_at has
    passed), and the rows that failed in the last hour.
    """
    with _database() as (engine, _queries), engine.begin() as connection:
        rows = read_summary(connection)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'status':<10} {'total':>8}  {'oldest due':<10}  failed last hour")
    for row in rows:
        failed = row["failed_last_hour"]
        click.echo(
            f"{row['status']:<10} {row['total']:>8}  "
            f"{format_age(row['oldest_due_age_seconds']):<10}  "
            f"{'-' if failed is None else failed}"
        )


@cli.command()
@click.argument("ids", nargs=-1, required=True, type=click.IntRange(min=1))
def retry(ids: tuple[int, ...]) -> None:
    """Retry the failed rows IDS now.

    Each failed row goes back to pending, due now, with attempts reset to 0, so
    it gets the mailer's full attempt budget again. last_error is kept until
    the next attempt overwrites it, so the reason for the failure stays
    visible. Rows that are not failed are left untouched and reported, as are
    ids that do not exist; then the exit status is 1.
    """
    wanted = sorted(set(ids))
    with _database() as (engine, queries), engine.begin() as connection:
        result = connection.execute(queries["retry_failed"], {"ids": wanted})
        retried = sorted(row.id for row in result)
        rest = [i for i in wanted if i not in retried]
        statuses = {}
        if rest:
            rows = connection.execute(queries["statuses"], {"ids": rest})
            statuses = {row.id: row.status for row in rows}
    logger.info("retried failed rows", extra={"action": "retry", "ids": retried})
    if retried:
        click.echo(f"retried {len(retried)}: {', '.join(map(str, retried))}")
    for row_id in rest:
        reason = f"is {statuses[row_id]}" if row_id in statuses else "does not exist"
        click.echo(f"not retried: {row_id} {reason}", err=True)
    if rest:
        raise SystemExit(1)


@cli.command("requeue-failed")
@click.option(
    "--since",
    type=Duration(),
    help="Only rows whose last attempt was within this long, e.g. 1h, 2d.",
)
def requeue_failed(since: int | None) -> None:
    """Retry every failed row now, or only recent ones.

    Each goes back to pending, due now, with attempts reset to 0. --since
    goes by last_attempt_at, when the row's last attempt failed.
    """
    with _database() as (engine, queries), engine.begin() as connection:
        if since is None:
            count = connection.execute(queries["requeue_failed"]).rowcount
        else:
            count = connection.execute(
                queries["requeue_failed_since"], {"seconds": float(since)}
            ).rowcount
    logger.info("requeued failed rows", extra={"action": "requeue", "count": count})
    click.echo(f"requeued {count} failed rows")


@cli.command()
@old_sent_rows_options("Delete", "deleted")
def purge(older_than: int, batch_size: int) -> None:
    """Delete old sent rows in batches, against table bloat.

    Deletes sent rows whose sent_at is older than --sent-older-than. This is
    how the outbox table stays small: sent rows are kept only as a delivery
    record, so purge them on a schedule (say daily, --sent-older-than 30d).
    Each batch is its own short transaction and only sent rows are ever
    deleted, so it is safe to run while mailers work; on PostgreSQL rows locked
    by someone else are skipped rather than waited for.
    """
    with _database() as (engine, _queries):
        deleted, batches = purge_sent(engine, older_than, batch_size)
    click.echo(f"purged {deleted} sent rows in {batches} batch(es)")


@cli.command()
@old_sent_rows_options("Redact", "redacted")
def redact(older_than: int, batch_size: int) -> None:
    """Blank the body and addresses of old sent rows, keeping an audit record.

    Each redacted row keeps its id, status, timestamps and Message-ID, and a
    keyed hash of the recipient (MAILER_REDACTION_KEY), so `outbox mailed
    ADDRESS` can still tell whether an address was mailed. Its whole message,
    attachments, error texts and attempt replies (which quote addresses) go.
    Suppression entries older than the cut-off are deleted. Only sent rows are
    touched, never queued ones. MAILER_RETENTION_DAYS does this on a schedule.
    """
    key = _redaction_key()
    with _database() as (engine, _queries):
        count, batches = redact_sent(engine, float(older_than), key, batch_size)
    click.echo(f"redacted {count} sent rows in {batches} batch(es)")


@cli.command()
@click.argument("address")
def mailed(address: str) -> None:
    """Tell whether ADDRESS was mailed, including in redacted rows.

    Needs MAILER_REDACTION_KEY, the key the rows were redacted with. Exits
    with status 1 when no row matches.
    """
    key = _redaction_key()
    params = {
        "recipient": address.strip().lower(),
        "recipient_hash": recipient_hash(key, address),
    }
    with _database() as (engine, queries), engine.begin() as connection:
        rows = connection.execute(queries["mailed"], params).all()
    for row in rows:
        click.echo(
            f"{row.id} {row.status} created {row.created_at} sent {row.sent_at or '-'}"
            f" {row.message_id}{' (redacted)' if row.redacted else ''}"
        )
    if not rows:
        click.echo("no mail to that address", err=True)
        raise SystemExit(1)


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. The page shows recipients: keep it local.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the status page until Ctrl-C.

    Rows per status, the oldest due row's age, sent and failed per minute over
    the last hour, the latest failures, a lookup by recipient, a page per row
    with its history, and the suppression list. Read-only unless
    OUTBOX_ADMIN_TOKEN (32+ characters) is set: then an operator who gives it
    may retry failed rows, cancel pending ones and unsuppress addresses.
    """
    # Imported here: the other commands need not load the page and its templates.
    from mailer_service.status_page import serve_status_page

    try:
        configure_logging()
        engine = make_engine()
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    try:
        serve_status_page(engine, host, port)
    except OSError as err:
        raise click.ClickException(f"cannot serve on {host}:{port}: {err}") from None
    finally:
        engine.dispose()


for command in (show, migrate, cancel, suppress, unsuppress, suppressions):
    cli.add_command(command)

if __name__ == "__main__":
    cli(prog_name="outbox")
