"""Build the distributions, install the wheel in a venv of its own, run from it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from tests.examples.shop import ORDER
from tests.support import ROOT
from tests.support.processes import child_env

BUILD_TIMEOUT = 600  # seconds; the isolated build may fetch setuptools first
INSTALL_TIMEOUT = 600  # seconds; pip may fetch the dependencies from PyPI
STOP_TIMEOUT = 60  # seconds for the mailer to exit after SIGTERM
# What the checkout holds but no build reads: venvs, caches, local state.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "build",
    "dist",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".import_linter_cache",
    ".env",
)
# Run by the venv's python inside the copied example: queue one order.
QUEUE_ONE_ORDER = f"""
import json
from app import create_app
response = create_app().test_client().post("/orders", json={ORDER!r})
print(json.dumps({{"status": response.status_code, "body": response.get_json()}}))
"""


def isolated_env(**env: str) -> dict[str, str]:
    """Return a child's environment that cannot reach the checkout's packages."""
    base = child_env(**env)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        base.pop(name, None)
    return base


def run(command: list[str], cwd: Path, timeout: float, **env: str) -> str:
    """Run ``command`` in ``cwd``; fail with its output, else return its stdout."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=isolated_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def build_distributions(scratch: Path) -> tuple[Path, Path]:
    """Build the sdist and the wheel from a copy of the checkout; return both.

    The copy keeps the build's egg-info out of the checkout others work in.
    """
    source, out = scratch / "source", scratch / "dist"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        scratch,
        BUILD_TIMEOUT,
    )
    return next(out.glob("*.tar.gz")), next(out.glob("*.whl"))


def wheel_names(wheel: Path) -> set[str]:
    """Return the paths of the files inside ``wheel``."""
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def sdist_names(sdist: Path) -> set[str]:
    """Return the sdist's paths without its top folder (``name-version/``)."""
    with tarfile.open(sdist) as archive:
        return {name.partition("/")[2] for name in archive.getnames()}


def package_data_in_checkout() -> set[str]:
    """Return the non-code files and migrations the installed packages need."""
    patterns = (
        "outbox_contract/migrations/*.py",
        "outbox_contract/migrations/script.py.mako",
        "outbox_contract/migrations/versions/*.py",
        "mailer_service/queries/*.sql",
        "mailer_service/templates/*.html",
        "flask_outbox/*.py",
    )
    return {
        path.relative_to(ROOT).as_posix()
        for pattern in patterns
        for path in ROOT.glob(pattern)
    }


def make_venv(path: Path, wheel: Path) -> Path:
    """Create a venv at ``path`` with ``wheel`` installed (not editable); its bin."""
    run([sys.executable, "-m", "venv", str(path)], path.parent, 120)
    bin_dir = path / "bin"
    run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        path.parent,
        INSTALL_TIMEOUT,
    )
    return bin_dir


def module_files(bin_dir: Path, cwd: Path, *modules: str) -> dict[str, str]:
    """Return where the venv's python imports each of ``modules`` from."""
    script = (
        "import importlib, json, sys; print(json.dumps({name:"
        " importlib.import_module(name).__file__ for name in sys.argv[1:]}))"
    )
    output = run([str(bin_dir / "python"), "-c", script, *modules], cwd, 60)
    return json.loads(output)


def queue_order(bin_dir: Path, app_dir: Path, **env: str) -> dict:
    """Make the copied example's tables and POST one order through its client."""
    flask = [str(bin_dir / "flask"), "--app", "app.py", "init-db"]
    run(flask, app_dir, 120, **env)
    output = run([str(bin_dir / "python"), "-c", QUEUE_ONE_ORDER], app_dir, 120, **env)
    return json.loads(output)


class InstalledMailer:
    """The venv's ``python -m mailer_service``, run outside the checkout."""

    def __init__(self, bin_dir: Path, cwd: Path, log_path: Path, **env: str) -> None:
        """Start the mailer in ``cwd`` with ``env`` as its config; log to a file."""
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(bin_dir / "python"), "-m", "mailer_service"],
                cwd=cwd,
                env=isolated_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        """Return what the mailer has logged so far."""
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> int:
        """Send SIGTERM and return the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(STOP_TIMEOUT)

    def stop_quietly(self) -> None:
        """Make sure the mailer is gone (test teardown)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
