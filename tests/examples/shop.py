"""The example shops for tests: load them, migrate their database, read their mail."""

from __future__ import annotations

import difflib
import functools
import importlib.util
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool

from tests.support import ROOT, VENV_BIN
from tests.support.databases import url_string
from tests.support.processes import child_env
from tests.support.smtp import Received

EXAMPLES = ROOT / "examples"
SEED_APP = EXAMPLES / "seed_app" / "app.py"
OUTBOX_APP = EXAMPLES / "outbox_app" / "app.py"
ORDER = {"email": "ada@example.com", "item": "Tea", "quantity": 2}
CLI_TIMEOUT = 120  # seconds for one `outbox migrate` or `flask init-db`


@functools.cache
def load_example(path: Path) -> ModuleType:
    """Import an example's ``app.py`` under a name of its own, once per session."""
    name = f"example_{path.parent.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # SQLAlchemy reads the models' string annotations through sys.modules.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def changed_lines(old: Path, new: Path) -> list[str]:
    """Return the ``+`` and ``-`` lines of ``diff -u old new``, without its header."""
    diff = difflib.unified_diff(
        old.read_text().splitlines(), new.read_text().splitlines(), lineterm=""
    )
    return [
        line
        for line in diff
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def run_cli(command: list[str], cwd: Path, **env: str) -> str:
    """Run a real command with only ``env`` for config; fail with its output."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def outbox_migrate(url: URL, cwd: Path, bin_dir: Path = VENV_BIN) -> str:
    """Give ``url`` the outbox's tables with the real ``outbox migrate`` CLI."""
    return run_cli(
        [str(bin_dir / "outbox"), "migrate"], cwd, DATABASE_URL=url_string(url)
    )


def scalar(url: URL, sql: str) -> Any:
    """Return the one value ``sql`` selects at ``url``, read by an engine of its own."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def expected_confirmation(order_id: int, logo: bytes) -> dict[str, Any]:
    """Return what :func:`confirmation_summary` should find for ``ORDER``."""
    return {
        "mail_from": "shop@example.com",
        "rcpt_tos": sorted(
            ["ada@example.com", "sales@example.com", "ledger@example.com"]
        ),
        "from": ("Shop, Inc.", "shop@example.com"),
        "to": "ada@example.com",
        "cc": "Sales <sales@example.com>",
        "bcc": None,
        "reply_to": "Shop Help <help@example.com>",
        "x_order_id": str(order_id),
        "csv": (
            "text/csv",
            "attachment",
            f"order,item,quantity\r\n{order_id},Tea,2\r\n".encode(),
        ),
        "logo": ("image/png", "inline", "<logo>", logo),
        "html_shows_logo": True,
    }


def confirmation_summary(received: Received, message: EmailMessage) -> dict[str, Any]:
    """Return the envelope, headers and parts of a delivered order confirmation."""
    sender = message["From"].addresses[0]
    files = {
        part.get_filename(): part for part in message.walk() if part.get_filename()
    }
    csv = next(part for name, part in files.items() if name.endswith(".csv"))
    logo = files["logo.png"]
    html = message.get_body(("html",))
    assert html is not None, "the confirmation has no HTML part"
    return {
        "mail_from": received.mail_from,
        "rcpt_tos": sorted(received.rcpt_tos),
        "from": (sender.display_name, sender.addr_spec),
        "to": str(message["To"]),
        "cc": str(message["Cc"]),
        "bcc": message["Bcc"],  # blind copies go in the envelope only
        "reply_to": str(message["Reply-To"]),
        "x_order_id": message["X-Order-Id"],
        "csv": (
            csv.get_content_type(),
            csv.get_content_disposition(),
            csv.get_payload(decode=True),
        ),
        "logo": (
            logo.get_content_type(),
            logo.get_content_disposition(),
            logo["Content-ID"],
            logo.get_payload(decode=True),
        ),
        "html_shows_logo": 'src="cid:logo"' in html.get_content(),
    }
