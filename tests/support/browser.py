"""Headless Chromium from Debian's package, driven by Playwright for Python.

Playwright's own browser download (``playwright install``) is never used: the
tests drive /usr/bin/chromium, which .ci/run installs where it is missing.
Without it (or without the playwright package) browser tests skip locally and
fail in CI.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.support import ROOT
from tests.support.optional import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "var" / "artifacts"  # screenshots a person can look at


def require_browser() -> None:
    """Skip the test (fail in CI) unless Chromium and Playwright are installed."""
    missing = []
    if not CHROMIUM.exists():
        missing.append("chromium (apt-get install -y chromium chromium-driver)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e '.[test]')")
    if missing:
        skip_or_fail("browser test needs " + " and ".join(missing))


def artifact(name: str) -> Path:
    """Return a path under var/artifacts for a file the test leaves behind."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
