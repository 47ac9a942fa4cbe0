"""Is the relay sink measuring the mailer, or the bench? Side by side, alternating.

``python -m bench.sink_check --rows 600 --rounds 3`` drains ``--rows`` outbox
rows with one mailer (as ``bench.throughput.drain`` does for the report) and
runs the Flask-Mail loop over one connection, against each sink in turn:

- the 50 ms relay sink *inside this process* (how the bench used to run it);
- the same sink in a process of its own (``bench.sink_process``, as now);
- postfix's smtp-sink, for reference.

``--busy-thread`` keeps one thread of this process computing meanwhile: any
Python work the bench does while measuring. The in-process sink's event loop
then waits for the GIL at every step, and only its figures fall.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench import database
from bench.ceilings import FLASK_MAIL, run_loop
from bench.context import Bench
from bench.sink_process import SinkProcess
from bench.sinks import RELAY_DELAY, PostfixSink, Sink, find_smtp_sink
from bench.smtp_sink import SmtpSink
from bench.throughput import drain

LOOP_MESSAGES = 200  # Flask-Mail loop messages per round; 10 s at 50 ms each
IN_PROCESS = "relay sink in the bench process"


@contextmanager
def busy_thread(on: bool) -> Iterator[None]:
    """Keep one thread of this process computing while the block runs, if ``on``."""
    stop = threading.Event()

    def spin() -> None:
        """Hold the GIL as pure-Python work does, until told to stop."""
        while not stop.is_set():
            sum(range(1000))

    thread = threading.Thread(target=spin, daemon=True)
    if on:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if on:
            thread.join()


def open_sinks(stack: ExitStack, logs: Path) -> dict[str, Sink]:
    """Start the sinks to compare, keyed by the table's label."""
    sinks: dict[str, Sink] = {
        IN_PROCESS: stack.enter_context(SmtpSink(data_delay=RELAY_DELAY)),
        "relay sink in its own process": stack.enter_context(
            SinkProcess(data_delay=RELAY_DELAY, log=logs / "sink-process.log")
        ),
    }
    binary = find_smtp_sink()
    if binary:
        sinks["postfix smtp-sink (no delay)"] = stack.enter_context(
            PostfixSink(binary, logs)
        )
    return sinks


def spread(values: list[float]) -> str:
    """Return ``median [min-max]`` of ``values``."""
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def main(argv: list[str] | None = None) -> int:
    """Alternate the sinks ``--rounds`` times; print msg/s per round and median."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=database.DEFAULT_ADMIN_URL)
    parser.add_argument("--rows", type=int, default=600, help="rows per drain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy-thread", action="store_true")
    args = parser.parse_args(argv)
    # Before the signup app's own logging: INFO would log every SMTP command.
    logging.basicConfig(level=logging.WARNING)
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(database.fresh_database(args.admin_url))
        sinks = open_sinks(stack, logs)
        local = sinks[IN_PROCESS]
        assert isinstance(local, SmtpSink)
        bench = Bench.on_one_sink(url, local, logs, rows=args.rows)
        drains: dict[str, list[float]] = {name: [] for name in sinks}
        loops: dict[str, list[float]] = {name: [] for name in sinks}
        for n in range(args.rounds):
            for i, (name, sink) in enumerate(sinks.items()):
                with busy_thread(args.busy_thread):
                    rate = drain(bench, sink, 1, args.rows, f"r{n}s{i}").per_second
                    loop = run_loop(bench, FLASK_MAIL, sink, LOOP_MESSAGES).per_second
                drains[name].append(rate)
                loops[name].append(loop)
                print(f"round {n}: {name}: mailer {rate:.1f}/s, loop {loop:.1f}/s")
    print(f"\n{args.rows} rows, busy thread: {'yes' if args.busy_thread else 'no'}")
    print("\n| sink | 1 mailer msg/s | Flask-Mail loop msg/s | mailer / loop |")
    print("|---|---:|---:|---:|")
    for name in sinks:
        ratio = statistics.median(drains[name]) / statistics.median(loops[name])
        cells = [name, spread(drains[name]), spread(loops[name]), f"{ratio:.1f}x"]
        print(f"| {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
