"""The ``outbox`` admin CLI refuses bad input and reports failures clearly."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import URL

from mailer_service.admin import cli
from tests.support.admin import outbox, seed, snapshot


@pytest.mark.parametrize(
    ("command", "phrase"),
    [
        ([], "Inspect and repair the email outbox"),
        (["stats"], "oldest due"),
        (["retry"], "attempts reset to 0"),
        (["requeue-failed"], "--since DURATION"),
        (["purge"], "table bloat"),
    ],
)
def test_help_describes_each_command(command, phrase):
    result = CliRunner().invoke(cli, [*command, "--help"])

    assert result.exit_code == 0
    assert phrase in " ".join(result.output.split())


@pytest.mark.parametrize(
    "args",
    [
        ["retry"],
        ["retry", "x"],
        ["retry", "8", "1.5"],
        ["retry", "8", "0"],
        ["retry", "8", "-3"],
        ["requeue-failed", "--since", "0h"],
        ["requeue-failed", "--since", "-1h"],
        ["requeue-failed", "--since", "1y"],
        ["requeue-failed", "--since", "h"],
        ["purge"],
        ["purge", "--sent-older-than", "30"],
        ["purge", "--sent-older-than", "1.5d"],
        ["purge", "--sent-older-than", "0d"],
        ["purge", "--sent-older-than", "30d", "--batch-size", "0"],
        ["purge", "--sent-older-than", "30d", "--batch-size", "-1"],
        ["purge", "--sent-older-than", "30d", "--batch-size", "x"],
        ["purge", "--sent-older-than", "1s", "--batch-size", "2", "extra"],
    ],
)
def test_bad_arguments_are_refused_and_touch_nothing(database_url, engine, args):
    seed(engine)
    before = snapshot(engine)

    result = outbox(database_url, *args)

    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert snapshot(engine) == before


def test_duration_error_names_the_expected_format(database_url):
    result = outbox(database_url, "purge", "--sent-older-than", "soon")

    assert "'soon' is not a positive duration like 45s, 30m, 12h or 30d" in (
        result.stderr
    )


@pytest.mark.parametrize("args", [["stats"], ["retry", "1"], ["requeue-failed"]])
def test_database_errors_give_a_clear_message(tmp_path, args):
    unmigrated = URL.create("sqlite", database=str(tmp_path / "empty.db"))

    result = outbox(unmigrated, *args)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: database error: no such table")


def test_unreachable_database_gives_a_clear_message():
    # Port 1 refuses connections at once; nothing listens there.
    result = outbox(URL.create("postgresql", host="127.0.0.1", port=1), "stats")

    assert result.exit_code == 1
    assert "Error: database error: connection failed" in result.stderr


def test_bad_database_url_names_the_variable():
    result = CliRunner().invoke(cli, ["stats"], env={"DATABASE_URL": "mysql://x/y"})

    assert result.exit_code == 1
    assert "DATABASE_URL must use postgresql:// or sqlite://" in result.stderr
