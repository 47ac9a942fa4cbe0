"""The Dockerfile builds a slim, non-root, runtime-only image of the project."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.support.deployfiles import (
    DOCKERFILE,
    build_workdir,
    dockerfile_env,
    dockerfile_instructions,
    dockerignore_patterns,
    dockerignored,
    exec_form,
)

# A pinned CPython 3.11 or 3.12 slim tag, e.g. python:3.12-slim or 3.12.7-slim-bookworm.
SLIM_PYTHON = re.compile(r"python:3\.1[12](\.\d+)?-slim(-[a-z]+)?")
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.IGNORECASE)


def dockerfile_problems(text: str) -> list[str]:
    """Return what breaks the image rules in a Dockerfile's ``text``."""
    instructions = dockerfile_instructions(text)
    keywords = [keyword for keyword, _ in instructions]
    problems: list[str] = []
    bases = [
        arguments.split()[0] for keyword, arguments in instructions if keyword == "FROM"
    ]
    if not bases or not SLIM_PYTHON.fullmatch(bases[-1]):
        problems.append("the base image is not a pinned python 3.11/3.12 slim tag")
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append("the image runs as root")
    if (
        "CMD" not in keywords
        or exec_form(instructions[keywords.index("CMD")][1]) is None
    ):
        problems.append("CMD is missing or not in exec form")
    elif "USER" not in keywords or keywords.index("USER") > keywords.index("CMD"):
        problems.append("USER comes after CMD")
    if "ENTRYPOINT" in keywords:
        # compose.yaml's commands are whole commands; an entrypoint would wrap them.
        problems.append("an ENTRYPOINT would change what compose's commands run")
    installs = [
        shlex.split(arguments)
        for keyword, arguments in instructions
        if keyword == "RUN" and "pip install" in arguments
    ]
    if not any("." in words for words in installs):
        problems.append("the project is not installed with `pip install .`")
    if any("[" in word for words in installs for word in words if word.startswith(".")):
        problems.append("pip installs the project's extras (tests or demo)")
    env = dockerfile_env(text)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        if env.get(name) != "1":
            problems.append(f"{name} is not set to 1")
    for keyword, arguments in instructions:
        if keyword in {"ENV", "ARG"}:
            for item in shlex.split(arguments):
                name = item.partition("=")[0]
                if SECRET_WORDS.search(name):
                    problems.append(f"{keyword} {name} bakes a secret into the image")
    return problems


def test_dockerfile_follows_the_image_rules():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_dockerfile_problems_reports_each_broken_rule():
    bad = """
        FROM python:latest
        ENV PYTHONUNBUFFERED=1 \\
            DATABASE_PASSWORD=hunter2
        COPY . .
        RUN pip install '.[test]'
        CMD gunicorn app
        USER app
        ENTRYPOINT ["sh", "-c"]
    """

    assert dockerfile_problems(bad) == [
        "the base image is not a pinned python 3.11/3.12 slim tag",
        "CMD is missing or not in exec form",
        "an ENTRYPOINT would change what compose's commands run",
        "the project is not installed with `pip install .`",
        "pip installs the project's extras (tests or demo)",
        "PYTHONDONTWRITEBYTECODE is not set to 1",
        "ENV DATABASE_PASSWORD bakes a secret into the image",
    ]


def test_dockerfile_problems_reports_root_and_late_user():
    base = (
        "FROM python:3.12-slim\n"
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1\n"
        "RUN pip install .\n"
    )
    cmd = 'CMD ["gunicorn", "app"]\n'

    assert dockerfile_problems(base + "USER root\n" + cmd) == ["the image runs as root"]
    assert dockerfile_problems(base + cmd + "USER app\n") == ["USER comes after CMD"]
    assert dockerfile_problems(base + "USER app\n" + cmd) == []


def test_dockerfile_workdir_holds_what_alembic_and_the_apps_need(image_workdir):
    for needed in (
        "pyproject.toml",
        "migrations/env.py",
        "signup_service",
        "mailer_service",
    ):
        assert (image_workdir / needed).exists(), needed
    # Left out by .dockerignore even inside copied folders.
    assert not list(image_workdir.rglob("__pycache__"))


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = dockerignore_patterns()

    for path in (".venv/bin/python", "var/outbox.db", ".git/config", ".env", "tests"):
        assert dockerignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "migrations/env.py"):
        assert not dockerignored(path, patterns), path


def test_dockerignored_matches_like_docker():
    assert dockerignored("a/b/__pycache__/x.pyc", ["**/__pycache__"])
    assert dockerignored("var/x", ["var"])
    assert not dockerignored("src/var", ["var"])  # only the top-level folder
    assert not dockerignored("pkg/x.egg-info", ["*.egg-info"])  # * stays in a segment
    assert not dockerignored(".env.example", [".env.*", "!.env.example"])


def test_build_workdir_fails_when_a_copied_path_is_ignored(tmp_path):
    """The layout check can fail: ignoring migrations/ breaks the build."""
    with pytest.raises(FileNotFoundError, match="COPY migrations/"):
        build_workdir(tmp_path, [*dockerignore_patterns(), "migrations"])
