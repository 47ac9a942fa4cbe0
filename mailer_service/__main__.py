"""`python -m mailer_service`: run the mailer under APScheduler until a signal.

APScheduler is the clock: it rings the wake-up every poll interval and runs
retention. The listener rings it on NOTIFY. The delivery thread runs a tick
per ring (:mod:`mailer_service.wakeup`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime

import click
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from mailer_service.app import create_app, db
from mailer_service.config import load_mailer_settings
from mailer_service.listener import DueListener
from mailer_service.mailer import Mailer
from mailer_service.retention import redact_sent, redaction_key
from mailer_service.wakeup import Wakeup, deliver_when_woken
from mailer_service.web import metrics_address, start_metrics_server
from outbox_contract.logs import configure_logging as configure_root_logging
from outbox_contract.settings import ConfigError

logger = logging.getLogger("mailer_service")

JOB_ID = "mailer"
RING_INSTANCES = 10  # rings of the poll that may run at once (a ring is instant)
RETENTION_EVERY = 3600  # seconds between retention runs
DAY = 86400  # seconds


def configure_logging() -> None:
    """Log to stderr, one line per event, without APScheduler's per-run chatter."""
    configure_root_logging()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


LISTENER_EXIT_SECONDS = 2.0  # how long a stop waits for the listener to leave


def build_scheduler(wakeup: Wakeup, poll_interval: float) -> BlockingScheduler:
    """Return a scheduler that rings ``wakeup`` every interval, from now on.

    Ringing takes no time, and a ring folds into any ring not yet taken, so
    runs may overlap harmlessly: a long tick simply finds the ring waiting
    when it ends. RING_INSTANCES only keeps a starved scheduler from warning
    that a run was skipped (it would mean rings stalled for that many polls).
    """
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        wakeup.ring,
        "interval",
        seconds=poll_interval,
        id=JOB_ID,
        max_instances=RING_INSTANCES,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    return scheduler


def add_retention_job(
    scheduler: BlockingScheduler, app: Flask, days: int, key: bytes
) -> None:
    """Redact sent rows older than ``days``, in batches, every RETENTION_EVERY."""

    def redact_old_sent() -> None:
        """One retention run; a database error waits for the next run."""
        with app.app_context():
            try:
                redact_sent(db.engine, days * DAY, key)
            except SQLAlchemyError:
                logger.exception("retention run failed", extra={"action": "redact"})

    scheduler.add_job(
        redact_old_sent,
        "interval",
        seconds=RETENTION_EVERY,
        id="retention",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )


def start_listener(
    mailer: Mailer, wakeup: Wakeup, url: URL | None
) -> DueListener | None:
    """Ring ``wakeup`` on every committed INSERT (PostgreSQL only)."""
    if url is None:
        return None  # SQLite has no LISTEN/NOTIFY: the poll interval is all
    listener = DueListener(url, wakeup.ring, mailer.mailer_id)
    mailer.on_idle = listener.idle
    listener.start()
    return listener


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
SCHEDULER_START_CHECKS = 200  # looks for a scheduler that has not started yet
SCHEDULER_START_CHECK_SECONDS = 0.05  # seconds between those looks


def block_stop_signals() -> None:
    """Block SIGTERM and SIGINT in this thread and every thread started after it.

    Called first thing, before any thread exists, so that only the thread of
    :func:`stop_on_signals` ever receives them.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def stop_on_signals(
    mailer: Mailer,
    scheduler: BlockingScheduler | None,
    listener: DueListener | None = None,
    wakeup: Wakeup | None = None,
) -> None:
    """Make SIGTERM and SIGINT stop claiming and end the scheduler's loop.

    A thread of its own waits for them (sigwait) and stops everything from
    there. A Python signal handler would run in the main thread between any
    two bytecodes, also while that thread holds a lock the stop needs (the
    scheduler's wake-up event's, say): under load a stop then hung for good.
    """

    def wait_and_stop() -> None:
        """Wait for a stop signal; stop claiming, the listener and the scheduler."""
        signum = signal.sigwait(STOP_SIGNALS)
        logger.info("received %s; stopping", signal.Signals(signum).name)
        mailer.stop()
        if wakeup is not None:
            wakeup.ring()  # the delivery loop sees the stop at once
        if listener is not None:
            listener.stop()
        # A signal that came before the scheduler started waits for it.
        for _ in range(SCHEDULER_START_CHECKS):
            if scheduler is None:
                return
            if scheduler.running:
                scheduler.shutdown(wait=False)
                return
            time.sleep(SCHEDULER_START_CHECK_SECONDS)

    threading.Thread(target=wait_and_stop, name="outbox-signals", daemon=True).start()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--once", is_flag=True, help="Deliver the rows due now, then exit.")
def main(once: bool) -> None:
    """Relay the outbox to SMTP until SIGTERM or SIGINT.

    Configured by the environment: DATABASE_URL, MAIL_* (Flask-Mail's, plus
    MAIL_TIMEOUT) and MAILER_* (see README.md, Configuration). Run as many
    mailers as you like against one PostgreSQL database.
    """
    block_stop_signals()
    try:
        configure_logging()
        settings = load_mailer_settings()
        app = create_app()
        key = redaction_key() if settings.retention_days else None
        metrics_at = metrics_address()
    except ConfigError as err:
        click.echo(f"mailer-service: configuration error: {err}", err=True)
        sys.exit(2)
    mailer = Mailer(app, settings)
    if once:
        stop_on_signals(mailer, None)
        mailer.run_tick()
        mailer.join()
        return
    wakeup = Wakeup()
    scheduler = build_scheduler(wakeup, settings.poll_interval)
    if settings.retention_days and key:
        add_retention_job(scheduler, app, settings.retention_days, key)
    url = app.config["MAILER_LISTEN_URL"]
    if metrics_at is not None:
        try:
            with app.app_context():
                engine = db.engine
            start_metrics_server(mailer, engine, metrics_at)
        except OSError as err:
            click.echo(f"mailer-service: cannot serve metrics: {err}", err=True)
            sys.exit(1)
    listener = start_listener(mailer, wakeup, url)
    delivery = threading.Thread(
        target=deliver_when_woken, args=(mailer, wakeup), name="delivery"
    )
    delivery.start()
    stop_on_signals(mailer, scheduler, listener, wakeup)
    logger.info(
        "mailer %s: %d SMTP connections, %s, batch %d, lease %gs, SMTP %s:%s",
        mailer.mailer_id,
        settings.concurrency,
        f"woken on commit, polling every {settings.poll_interval:g}s"
        if listener
        else f"polling every {settings.poll_interval:g}s",
        settings.batch_size,
        settings.lease_seconds,
        app.config["MAIL_SERVER"],
        app.config["MAIL_PORT"],
        extra={"action": "start"},
    )
    scheduler.start()
    delivery.join()
    mailer.join()
    if listener is not None:
        # Let it leave outbox_waiters, so producers stop notifying for us.
        listener.join(timeout=LISTENER_EXIT_SECONDS)
    logger.info("mailer %s stopped", mailer.mailer_id, extra={"action": "stop"})


if __name__ == "__main__":
    main(prog_name="python -m mailer_service")
