"""What every benchmark phase shares: the database, the SMTP sinks, the knobs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from bench.sinks import RecordingSink, Sink

MAILER_POLL_INTERVAL = "0.1"  # seconds; small, so a drain starts at once


# The signup service needs a SECRET_KEY on PostgreSQL, and its per-client rate
# limit would throttle the load generator, which is a single client.
SIGNUP_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(32),
    "SIGNUP_RATE_LIMIT": "1000000/minute",
}


@dataclass
class Bench:
    """The shared state of one ``make bench`` run."""

    db_url: str
    slow: RecordingSink  # answers MAIL FROM after SLOW_SMTP_SECONDS, own process
    fast: RecordingSink  # answers at once, own process
    logs: Path  # one log file per child process
    requests: int  # measured signups per latency phase
    concurrency: int  # client threads of the load generator
    kill_signups: int  # signups in flight when the web process is killed
    mailer_rows: int  # outbox rows drained in the throughput phase
    sink: Sink  # smtp-sink, or its in-process fallback: the mailer figures
    relay: Sink  # answers each DATA after RELAY_DELAY, in its own process
    relay_rows: int  # outbox rows and ceiling messages against the relay sink
    # MAILER_CONCURRENCY when --mailer-concurrency sets it; otherwise the
    # variable, if any, reaches the mailers with the rest of our environment.
    mailer_extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def on_one_sink(
        cls, db_url: str, sink: RecordingSink, logs: Path, rows: int = 0
    ) -> Bench:
        """Return a bench whose every sink is ``sink``: for one phase, or a test.

        Only the database, the logs and the mailers' environment are used.
        """
        return cls(
            db_url=db_url,
            slow=sink,
            fast=sink,
            logs=logs,
            requests=0,
            concurrency=0,
            kill_signups=0,
            mailer_rows=rows,
            sink=sink,
            relay=sink,
            relay_rows=rows,
        )

    def mail_env(self, sink: Sink) -> dict[str, str]:
        """Return the ``MAIL_*`` variables that point Flask-Mail at ``sink``."""
        return {
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(sink.port),
            "MAIL_USE_TLS": "false",
            "MAIL_USE_SSL": "false",
        }

    def outbox_env(self, sink: Sink) -> dict[str, str]:
        """Return the signup service's environment, mail pointed at ``sink``."""
        return {**self.mail_env(sink), **SIGNUP_ENV, "DATABASE_URL": self.db_url}

    def idle_mailer_env(self, sink: Sink) -> dict[str, str]:
        """Return a mailer's environment with default settings, bar concurrency."""
        return {**self.outbox_env(sink), **self.mailer_extra}

    def mailer_env(self, sink: Sink) -> dict[str, str]:
        """Return the mailer's environment for a drain, delivering to ``sink``."""
        return {
            **self.idle_mailer_env(sink),
            "MAILER_POLL_INTERVAL": MAILER_POLL_INTERVAL,
        }

    def log(self, name: str) -> Path:
        """Return the log file for the child called ``name``."""
        return self.logs / f"{name}.log"
