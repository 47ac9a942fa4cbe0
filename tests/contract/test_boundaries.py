"""The package boundaries: two services and a contract, checked by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, VENV_BIN

PACKAGES = (
    "outbox_contract",
    "flask_outbox",
    "signup_service",
    "mailer_service",
    "migrations",
)


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts on the tree in ``folder``."""
    return subprocess.run(
        [str(VENV_BIN / "lint-imports"), "--config", "pyproject.toml", "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": str(VENV_BIN), "PYTHONPATH": str(folder)},
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and pyproject.toml, safe to break."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(path: Path, line: str) -> None:
    """Put ``line`` right after the ``from __future__`` import of ``path``."""
    source = path.read_text()
    marker = "from __future__ import annotations\n"
    path.write_text(source.replace(marker, f"{marker}\n{line}\n", 1))


def test_import_contracts_hold_on_the_real_tree(tree: Path) -> None:
    result = lint_imports(tree)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "mailer_service/mailer.py",
            "from signup_service import create_app",
            "The two services never import each other",
        ),
        (
            "signup_service/views.py",
            "import mailer_service.store",
            "The two services never import each other",
        ),
        (
            "outbox_contract/enqueue.py",
            "import flask",
            "The contract stands on neither service",
        ),
        (
            "migrations/env.py",
            "from signup_service.config import signup_settings",
            "Migrations use only the contract",
        ),
        (
            "mailer_service/admin.py",
            "from mailer_service.app import create_app",
            "The operator surfaces never load the delivery engine",
        ),
        (
            "mailer_service/status_page.py",
            "import flask_mail",
            "The operator surfaces never load the delivery engine",
        ),
    ],
)
def test_import_contracts_fail_when_a_boundary_is_crossed(
    tree: Path, module: str, line: str, contract: str
) -> None:
    add_import(tree / module, line)

    result = lint_imports(tree)

    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout


def modules_loaded_by(*imports: str) -> set[str]:
    """Import ``imports`` in a fresh interpreter; return every module it loaded."""
    probe = f"import sys, {', '.join(imports)}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(result.stdout.split())


def test_importing_the_mailer_loads_nothing_of_the_signup_service() -> None:
    loaded = modules_loaded_by(
        "mailer_service.mailer", "mailer_service.admin", "mailer_service.__main__"
    )

    assert "mailer_service.mailer" in loaded  # the probe ran
    assert not {m for m in loaded if m.startswith("signup_service")}
    assert "email_validator" not in loaded


def test_the_operator_tools_never_load_flask_mail() -> None:
    """``outbox`` and the status page start without the delivery engine."""
    loaded = modules_loaded_by(
        "mailer_service.admin", "mailer_service.status_page", "mailer_service.web"
    )

    assert "mailer_service.status_page" in loaded  # the probe ran
    assert "flask_mail" not in loaded
    assert "mailer_service.app" not in loaded
    assert "mailer_service.smtp" not in loaded


def test_the_package_still_offers_create_app_and_its_extensions() -> None:
    import mailer_service
    from mailer_service import app

    assert mailer_service.create_app is app.create_app
    assert mailer_service.db is app.db
    assert mailer_service.mail is app.mail
    with pytest.raises(AttributeError, match="no_such_name"):
        mailer_service.no_such_name  # noqa: B018


def test_rows_per_status_is_read_by_one_statement() -> None:
    """The gauges, `outbox stats` and the status page share one summary query."""
    readers = sorted(
        str(path.relative_to(ROOT))
        for package in ("outbox_contract", "mailer_service", "signup_service")
        for path in (ROOT / package).rglob("*")
        if path.suffix in (".py", ".sql")
        and "migrations" not in path.parts
        and "FROM outbox_summary" in path.read_text()
    )

    assert readers == ["outbox_contract/summary.py"]
