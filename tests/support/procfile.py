"""Run the Procfile's commands as real subprocesses, and talk to them over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from honcho.environ import parse_procfile

from tests.support import ROOT, VENV_BIN
from tests.support.processes import wait_until

START_TIMEOUT = 120.0  # seconds for a process to start answering (2 busy cores)
STOP_TIMEOUT = 60.0  # seconds for a process group to exit after a signal


def procfile() -> dict[str, str]:
    """Return the Procfile's commands by process name, parsed as honcho parses it."""
    return dict(parse_procfile((ROOT / "Procfile").read_text()).processes)


def with_venv_path(env: Mapping[str, str]) -> dict[str, str]:
    """Put the venv's bin first on PATH, as ``make run`` does for the Procfile."""
    return {**env, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}


def start_shell(
    command: str, env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """Run ``command`` through /bin/sh as honcho does, in its own process group."""
    with log.open("wb") as output:
        # The child keeps its own copy of the descriptor; ours closes here.
        return subprocess.Popen(
            command,
            shell=True,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads, if it still exists."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def stop_all(processes: Iterable[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM every group, wait, SIGKILL those that hang; return the hung pids."""
    processes = list(processes)
    for process in processes:
        signal_group(process, signal.SIGTERM)
    hung = []
    for process in processes:
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            hung.append(process.pid)
            signal_group(process, signal.SIGKILL)
            process.wait()
    return hung


def wait_or_fail(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    details: Callable[[], str] = str,
) -> None:
    """Poll ``predicate`` until truthy; on timeout fail naming ``what``.

    ``details`` is called only then, e.g. to show a process's log as it is by then.
    """
    if not wait_until(predicate, timeout, interval=0.1):
        raise AssertionError(
            f"timed out after {timeout:g}s waiting for {what}\n{details()}"
        )


def answers(url: str) -> bool:
    """Tell whether ``url`` answers 200 right now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:  # refused while starting; URLError is an OSError
        return False


def post_signup(port: int, email: str) -> tuple[int, dict]:
    """POST a JSON signup to 127.0.0.1:``port``; return (status, JSON body)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/signup",
        data=json.dumps({"email": email}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read() or b"{}")


def live_processes_in(groups: Iterable[int]) -> list[str]:
    """Describe every live (non-zombie) process whose process group is in ``groups``."""
    groups = set(groups)
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited while we looked
            continue
        # The command name may contain spaces and parentheses: split after it.
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) in groups and state != "Z":
            found.append(f"{stat.parent.name} {text[: text.rindex(')') + 1]}")
    return found
