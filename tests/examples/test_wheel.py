"""The wheel as a user gets it: built, installed in a fresh venv, run elsewhere.

Nothing here may resolve to the checkout: the venv has the wheel (not an
editable install), every command runs in a scratch directory outside the
repository, and the example shop is a copy of ``examples/outbox_app/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import URL

from tests.examples.shop import (
    EXAMPLES,
    OUTBOX_APP,
    confirmation_summary,
    expected_confirmation,
    load_example,
    scalar,
)
from tests.examples.wheel import (
    InstalledMailer,
    build_distributions,
    make_venv,
    module_files,
    package_data_in_checkout,
    queue_order,
    run,
    sdist_names,
    wheel_names,
)
from tests.support import ROOT
from tests.support.smtp import SmtpServer

DELIVERY_TIMEOUT = 60.0  # seconds from starting the mailer to the accepted DATA
PACKAGES = ("outbox_contract", "flask_outbox", "mailer_service")
LOCAL_LEFTOVERS = shutil.ignore_patterns("__pycache__", "instance")  # not the example


@pytest.mark.slow
def test_wheel_installs_and_runs_the_example_outside_the_checkout(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    assert not tmp_path.resolve().is_relative_to(ROOT)
    sdist, wheel = build_distributions(tmp_path / "build")
    assert sdist.is_file() and wheel.is_file()
    needed = package_data_in_checkout()
    assert "outbox_contract/migrations/script.py.mako" in needed
    assert needed - wheel_names(wheel) == set(), "missing from the wheel"
    assert needed - sdist_names(sdist) == set(), "missing from the sdist"

    venv = tmp_path / "venv"
    bin_dir = make_venv(venv, wheel)
    work = tmp_path / "work"
    work.mkdir()
    for name, path in module_files(bin_dir, work, *PACKAGES).items():
        assert Path(path).is_relative_to(venv), f"{name} imported from {path}"

    database = work / "shop.db"
    env = {"DATABASE_URL": f"sqlite:///{database}"}
    head = ScriptDirectory(str(ROOT / "outbox_contract" / "migrations"))
    migrated = run([str(bin_dir / "outbox"), "migrate"], work, 120, **env)
    assert migrated == f"outbox tables at revision {head.get_current_head()}\n"
    app_dir = work / "outbox_app"
    shutil.copytree(EXAMPLES / "outbox_app", app_dir, ignore=LOCAL_LEFTOVERS)
    queued = queue_order(bin_dir, app_dir, **env)
    assert queued["status"] == 201, queued

    mailer = InstalledMailer(
        bin_dir,
        work,
        tmp_path / "mailer.log",
        **env,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp.port),
        MAILER_POLL_INTERVAL="0.1",
    )
    try:
        assert smtp.wait_for(1, DELIVERY_TIMEOUT), mailer.log()
        assert mailer.terminate() == 0, mailer.log()
    finally:
        mailer.stop_quietly()

    [received], [message] = smtp.received, smtp.messages
    logo = load_example(OUTBOX_APP).LOGO_PNG
    assert confirmation_summary(received, message) == expected_confirmation(
        queued["body"]["id"], logo
    )
    url = URL.create("sqlite", database=str(database))
    assert scalar(url, "SELECT status FROM outbox") == "sent"
