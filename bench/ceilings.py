"""Same-run ceilings: one SMTP connection, no database, each in its own process.

The raw smtplib loop sends prebuilt bytes: the most one connection carries.
The Flask-Mail loop builds a ``flask_mail.Message`` per message as the mailer
does: the most a mailer built on Flask-Mail can reach over one connection.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from bench.context import Bench
from bench.messages import LoopTimes
from bench.procs import ROOT
from bench.sinks import Sink, sink_label

LOOP_TIMEOUT = 600.0  # seconds; far more than a loop takes on a busy machine
RAW, FLASK_MAIL = "raw", "flask-mail"
LOOPS = {
    RAW: ("bench.raw_send", "raw smtplib loop"),
    FLASK_MAIL: ("bench.flask_mail_send", "Flask-Mail loop"),
}


@dataclass(frozen=True)
class Ceiling:
    """Messages per second one loop reached against one SMTP server."""

    loop: str  # RAW or FLASK_MAIL
    sink: str
    messages: int
    per_second: float

    @property
    def name(self) -> str:
        """Return the loop's label for tables."""
        return f"{LOOPS[self.loop][1]}, one connection"


def run_loop(bench: Bench, loop: str, sink: Sink, count: int) -> Ceiling:
    """Run one loop against ``sink`` in a child process; check the sink took all."""
    module, _ = LOOPS[loop]
    before = sink.count()
    argv = [sys.executable, "-m", module, str(sink.port), str(count)]
    with bench.log(f"ceiling-{loop}-{sink.port}").open("ab") as errors:
        finished = subprocess.run(
            [*argv, "--prefix", f"ceiling-{loop}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            check=True,
            timeout=LOOP_TIMEOUT,
        )
    times = LoopTimes.from_json(finished.stdout.decode().strip().splitlines()[-1])
    accepted = sink.count() - before
    if times.sent != count or accepted != count:
        raise RuntimeError(
            f"{module} sent {times.sent} of {count}; the sink took {accepted}"
        )
    return Ceiling(loop, sink_label(sink), count, times.per_second)


def measure_ceilings(bench: Bench, sink: Sink, count: int) -> dict[str, Ceiling]:
    """Run the raw and the Flask-Mail loop against ``sink``, one after the other."""
    return {loop: run_loop(bench, loop, sink, count) for loop in LOOPS}
