"""The one way a test gives up for want of a tool: skip locally, fail in CI.

A developer's machine may lack Chromium, promtool, Redis, postfix's smtp-sink
or user namespaces, and the tests that need them skip with the reason. CI
(``CI=true``) and a run that asks for everything (``OUTBOX_REQUIRE_POSTGRES=1``,
as .ci/run sets) install or start them, so there a missing tool is a failure:
a skip there could hide a broken feature behind a green run.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

_TRUE = {"1", "true", "yes"}


def everything_must_run() -> bool:
    """Tell whether this run treats a missing tool as a failure (CI or required)."""
    return any(
        os.environ.get(name, "").lower() in _TRUE
        for name in ("CI", "OUTBOX_REQUIRE_POSTGRES")
    )


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for ``reason``; fail it instead where everything must run."""
    if everything_must_run():
        pytest.fail(f"{reason}; this run needs every test", pytrace=False)
    pytest.skip(reason)
