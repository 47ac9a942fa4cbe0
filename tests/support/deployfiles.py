"""Read compose.yaml, the Dockerfile and .dockerignore the way docker would.

No Docker engine runs the tests, so these helpers do the small part of its work
the deploy tests need: interpolate ``${VAR...}`` values, split Dockerfile
instructions, and lay out the image's working directory from its COPY lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tests.support import ROOT, VENV_BIN

COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PACKAGES = ("outbox_contract", "flask_outbox", "signup_service", "mailer_service")
# Python files outside the packages that the image runs, such as gunicorn's config.
RUNTIME_FILES = ("gunicorn.conf.py",)
# Variables a dependency reads itself rather than through our config modules;
# each counts as read only while that library is installed and mentions it.
LIBRARY_ENV_NAMES = {
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client",
    "XDG_RUNTIME_DIR": "gunicorn",  # where it puts its control socket
}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME, $$
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# How the config modules read a variable: parse_int(environ, "NAME", ...),
# _raw(environ, "NAME"), environ.get("NAME"), environ["NAME"].
_ENV_READ = re.compile(r"""environ(?:,\s*|\.get\(\s*|\[\s*)["']([A-Z][A-Z0-9_]*)["']""")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class InterpolationError(ValueError):
    """A required ``${VAR:?...}`` variable has no value, as compose would report."""


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """Substitute ``${...}`` in every string of ``value``, as compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        """Return the replacement of one ``$`` expression."""
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        current = environ.get(name)
        op, arg = match["op"], match["arg"] or ""
        missing = current is None or (current == "" and op and op.startswith(":"))
        if op and op.endswith("-"):
            return arg if missing else current
        if op and op.endswith("?") and missing:
            raise InterpolationError(f"required variable {name} is missing: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """Return compose.yaml as written, anchors and ``<<`` merges resolved."""
    return yaml.safe_load(path.read_text())


def compose_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return compose.yaml with its variables taken from ``environ`` (a .env)."""
    return interpolate(load_compose(), environ)


def service_env(config: Mapping[str, Any], service: str) -> dict[str, str]:
    """Return the environment compose gives ``service``'s containers."""
    environment = config["services"][service].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: "" if val is None else str(val) for key, val in environment.items()}


def active_services(
    config: Mapping[str, Any], profiles: Iterable[str] = ()
) -> set[str]:
    """Return the services ``docker compose --profile P... up`` starts.

    A service without ``profiles`` always runs; one with them runs when one of
    its profiles is among ``profiles``.
    """
    chosen = set(profiles)
    return {
        name
        for name, service in config["services"].items()
        if not service.get("profiles") or chosen & set(service["profiles"])
    }


def missing_dependencies(
    config: Mapping[str, Any], profiles: Iterable[str] = ()
) -> list[str]:
    """Return ``service -> dependency`` for each required dependency left out.

    With ``profiles`` active, a running service may depend on one that does not
    run only with ``required: false``; otherwise compose refuses the project.
    """
    running = active_services(config, profiles)
    missing = []
    for name in sorted(running):
        depends_on = config["services"][name].get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {dependency: {} for dependency in depends_on}
        for dependency, spec in depends_on.items():
            if dependency not in running and spec.get("required", True):
                missing.append(f"{name} -> {dependency}")
    return missing


def compose_variables(path: Path = COMPOSE_FILE) -> set[str]:
    """Return the names compose.yaml interpolates from the shell or .env."""
    return {
        match["braced"] or match["bare"]
        for match in _VARIABLE.finditer(path.read_text())
        if not match["escaped"]
    }


def compose_required_variables(path: Path = COMPOSE_FILE) -> set[str]:
    """Return the names compose.yaml requires (``${NAME:?...}`` or ``${NAME?...}``)."""
    return {
        match["braced"]
        for match in _VARIABLE.finditer(path.read_text())
        if match["op"] and match["op"].endswith("?")
    }


def env_example_names(path: Path = ENV_EXAMPLE) -> set[str]:
    """Return the variables .env.example sets or shows commented out."""
    found = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), re.MULTILINE)
    return set(found)


def env_example_values(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """Return the value .env.example shows for each variable, quotes removed."""
    found = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", path.read_text(), re.MULTILINE)
    return {name: value.strip().strip('"') for name, value in found}


def parse_duration(text: str) -> float:
    """Return a compose duration such as ``1m30s`` in seconds."""
    if not text or _DURATION.sub("", text):
        raise ValueError(f"not a compose duration: {text!r}")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION.findall(text))


def env_names_read_by_code(packages: Iterable[str] = PACKAGES) -> set[str]:
    """Return every variable name the image's code reads from an environ mapping.

    That is the packages, the runtime files beside them, and the names in
    LIBRARY_ENV_NAMES whose library is installed and reads them.
    """
    sources = [
        source for package in packages for source in (ROOT / package).rglob("*.py")
    ]
    sources += [ROOT / name for name in RUNTIME_FILES if (ROOT / name).is_file()]
    names: set[str] = set()
    for source in sources:
        names.update(_ENV_READ.findall(source.read_text()))
    return names | env_names_read_by_libraries()


def env_names_read_by_libraries() -> set[str]:
    """Return the names of LIBRARY_ENV_NAMES that their installed library reads."""
    names: set[str] = set()
    for name, module in LIBRARY_ENV_NAMES.items():
        spec = importlib.util.find_spec(module)
        folders = (spec.submodule_search_locations or []) if spec else []
        if any(
            name in source.read_text(errors="replace")
            for folder in folders
            for source in Path(folder).rglob("*.py")
        ):
            names.add(name)
    return names


def unknown_env_names(names: Iterable[str]) -> set[str]:
    """Return those of ``names`` that no service reads."""
    return set(names) - env_names_read_by_code()


def container_env(**overrides: str) -> dict[str, str]:
    """Return an environment for a service subprocess, as its container sees it.

    The venv's bin comes first on PATH, so ``python``, ``gunicorn`` and
    ``alembic`` resolve as in the image; app variables of the caller's shell are
    dropped so only ``overrides`` configure the child.
    """
    read = env_names_read_by_code()
    env = {key: val for key, val in os.environ.items() if key not in read}
    env.update(dockerfile_env())
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env.update(overrides)
    return env


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """Split a Dockerfile into (INSTRUCTION, arguments), continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_env(text: str | None = None) -> dict[str, str]:
    """Return the variables the Dockerfile's ENV lines set."""
    text = DOCKERFILE.read_text() if text is None else text
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile_instructions(text):
        if keyword == "ENV":
            env.update(item.partition("=")[::2] for item in shlex.split(arguments))
    return env


def exec_form(arguments: str) -> list[str] | None:
    """Return a CMD/ENTRYPOINT in JSON exec form as a list, or None if shell form."""
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def dockerfile_cmd(text: str | None = None) -> list[str] | None:
    """Return the image's default command, or None when it is not exec form."""
    text = DOCKERFILE.read_text() if text is None else text
    commands = [a for k, a in dockerfile_instructions(text) if k == "CMD"]
    return exec_form(commands[-1]) if commands else None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a .dockerignore pattern: ``*`` stays within one path segment."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] in "*?":
            out, i = out + ("[^/]*" if pattern[i] == "*" else "[^/]"), i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_patterns(path: Path = DOCKERIGNORE) -> list[str]:
    """Return the patterns of .dockerignore, comments and blanks dropped."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def dockerignored(relative: str, patterns: Iterable[str]) -> bool:
    """Tell whether the build context leaves out ``relative`` (or a parent of it)."""
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _glob_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def build_workdir(root: Path, patterns: list[str] | None = None) -> Path:
    """Lay out the image's files under ``root`` from the Dockerfile's COPY lines.

    Returns the WORKDIR; a COPY source that is missing or left out of the build
    context (``patterns``, .dockerignore's by default) raises FileNotFoundError,
    as ``docker build`` fails.
    """
    patterns = dockerignore_patterns() if patterns is None else patterns
    workdir = PurePosixPath("/")
    for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "WORKDIR":
            workdir = workdir / arguments
        if keyword != "COPY":
            continue
        *sources, target = [a for a in shlex.split(arguments) if not a.startswith("--")]
        destination = root / str(workdir / target).lstrip("/")
        for source in sources:
            name = source.strip("/")
            if not (ROOT / name).exists() or dockerignored(name, patterns):
                raise FileNotFoundError(f"COPY {source}: not in the build context")
            if (ROOT / name).is_dir():
                shutil.copytree(
                    ROOT / name,
                    destination,
                    dirs_exist_ok=True,
                    ignore=lambda folder, names: [
                        n
                        for n in names
                        if dockerignored(
                            (Path(folder) / n).relative_to(ROOT).as_posix(), patterns
                        )
                    ],
                )
            else:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, destination / Path(name).name)
    return root / str(workdir).lstrip("/")
