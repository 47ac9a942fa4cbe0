"""Run a command as a pod with ``readOnlyRootFilesystem`` and emptyDirs would.

No container runtime runs the tests, so a private mount namespace (util-linux
``unshare``, as the unprivileged user namespace's root) stands in: every
writable mount except /proc, /sys and /dev is remounted read-only, and a fresh
tmpfs is mounted on one host directory per emptyDir. The caller points the
command at those directories (TMPDIR for /tmp, the variables that name a
mount path), since the manifests' paths are not this machine's.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

# Remount each writable filesystem read-only, put a tmpfs on every emptyDir,
# then run the command from the image's working directory.
_SCRIPT = r"""
set -eu
workdir=$1; shift
findmnt -rn -o TARGET,OPTIONS | while read -r target options; do
  case "$target" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  case ",$options," in *,ro,*) continue ;; esac
  mount -o remount,bind,ro "$target"
done
while [ "$1" != "--" ]; do
  mount -t tmpfs -o size=64m,mode=1777 emptydir "$1"; shift
done
shift
cd "$workdir"
exec "$@"
"""


def readonly_root_available() -> str | None:
    """Return why the read-only sandbox cannot run here, or None if it can."""
    if shutil.which("unshare") is None or shutil.which("findmnt") is None:
        return "util-linux unshare and findmnt are not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"no user namespaces here: {probe.stderr.strip()}"
    return None


def readonly_root(
    command: list[str], workdir: Path, emptydirs: Iterable[Path]
) -> list[str]:
    """Return ``command`` wrapped to run read-only but for ``emptydirs``.

    Each of ``emptydirs`` must exist; it is replaced by an empty tmpfs. The
    command replaces the wrapper's process (no fork), so signals sent to the
    returned process reach the command itself.
    """
    return [
        "unshare",
        "--mount",
        "--map-root-user",
        "--propagation",
        "private",
        "sh",
        "-c",
        _SCRIPT,
        "readonly-root",
        str(workdir),
        *map(str, emptydirs),
        "--",
        *command,
    ]
