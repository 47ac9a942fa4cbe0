"""gunicorn settings of the signup service: prometheus-client's multiprocess mode.

Every command that serves the signup app passes this file (``-c
gunicorn.conf.py``): the Procfile of ``make run``, the Dockerfile's CMD and
compose.yaml. The bind address and worker count stay on those command lines.

Each worker writes its metrics to files in ``PROMETHEUS_MULTIPROC_DIR``, and
whichever worker answers ``/metrics`` adds them all up. So the directory must
be known before the first worker starts (prometheus-client reads it when first
imported), must start empty (old files would add the last run's counts), and
must forget a dead worker's live gauges. Unset, a fresh directory is made for
this run and removed at exit.

This file is plain Python that gunicorn executes in its master process; it must
not import prometheus_client before the variable is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

_OWN_DIRECTORY = not os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
if _OWN_DIRECTORY:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="signup-metrics-")
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"].strip())


def on_starting(server: Any) -> None:
    """Create the metrics directory, or empty it of the last run's files."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop the live gauges of a worker that exited (its counters stay counted)."""
    from prometheus_client import multiprocess  # only now: the variable is set

    multiprocess.mark_process_dead(worker.pid, str(METRICS_DIR))


def on_exit(server: Any) -> None:
    """Remove the directory this file made; a configured one is left in place."""
    if _OWN_DIRECTORY:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
