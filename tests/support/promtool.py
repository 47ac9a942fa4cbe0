"""promtool (Debian's ``prometheus`` package) checks metrics, configs and rules.

Missing locally, the tests that need it skip with the reason; in CI (``CI=true``,
where .ci/run installs it) they fail instead (tests/support/optional.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import ROOT
from tests.support.optional import skip_or_fail

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
TIMEOUT = 120  # seconds for one promtool run


def require_tool(name: str, install: str) -> str:
    """Return the path of ``name``; skip the test (fail in CI) when it is missing."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not installed ({install})")
    return path


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run ``promtool ARGS`` and return its result (output as text)."""
    tool = require_tool("promtool", "apt-get install -y prometheus")
    result = subprocess.run(
        [tool, *args], input=stdin, capture_output=True, timeout=TIMEOUT
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"),
    )


def check_metrics(exposition: bytes) -> subprocess.CompletedProcess:
    """Lint a text exposition with ``promtool check metrics``."""
    return promtool("check", "metrics", stdin=exposition)


def prometheus_file(name: str) -> Path:
    """Return a file of deploy/prometheus."""
    return PROMETHEUS_DIR / name
