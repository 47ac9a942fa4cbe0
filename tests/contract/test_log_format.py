"""LOG_FORMAT chooses text or JSON lines; either way addresses never reach a log."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from outbox_contract.database import engine_options
from outbox_contract.logs import (
    FieldsFormatter,
    configure_logging,
    log_format,
    make_formatter,
    redact_addresses,
)
from outbox_contract.settings import ConfigError, database_url
from tests.support import ROOT
from tests.support.processes import child_env

FIELDS = {
    "action": "deliver",
    "outbox_id": 42,
    "attempt": 1,
    "result": "failed",
    "code": 550,
    "latency_ms": 12,
    "mailer_id": "host:1:ab",
}


def delivery_record(error: str = "550 <ada@example.com> no such user"):
    """Return the record Outcomes logs for a failed delivery."""
    record = logging.LogRecord(
        "mailer_service.outcomes",
        logging.WARNING,
        __file__,
        1,
        "delivery failed: %s",
        (error,),
        None,
    )
    record.__dict__.update(FIELDS)
    return record


def test_log_format_defaults_to_text_and_accepts_json():
    assert log_format({}) == "text"
    assert log_format({"LOG_FORMAT": " JSON "}) == "json"
    assert log_format({"LOG_FORMAT": ""}) == "text"


def test_log_format_rejects_other_values():
    with pytest.raises(ConfigError, match="LOG_FORMAT must be text or json"):
        log_format({"LOG_FORMAT": "logfmt"})
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        configure_logging(environ={"LOG_FORMAT": "xml"})


def test_json_formatter_writes_one_object_with_the_extra_fields():
    line = make_formatter("json").format(delivery_record())

    assert "\n" not in line
    entry = json.loads(line)
    assert {k: entry[k] for k in FIELDS} == FIELDS
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "mailer_service.outcomes"
    assert entry["message"] == "delivery failed: 550 <[address]> no such user"
    assert "time" in entry


def test_json_formatter_keeps_a_traceback_inside_the_object():
    try:
        raise RuntimeError("boom for bob@example.org")
    except RuntimeError:
        record = delivery_record()
        record.exc_info = sys.exc_info()

    entry = json.loads(make_formatter("json").format(record))

    assert "RuntimeError: boom for [address]" in entry["exc_info"]


def test_text_formatter_masks_addresses_in_message_and_fields():
    record = delivery_record()
    record.__dict__["note"] = "for grace@example.com"

    line = FieldsFormatter("%(message)s").format(record)

    assert "@" not in line
    assert line.startswith("delivery failed: 550 <[address]> no such user")
    assert "outbox_id=42" in line and "note=for [address]" in line


@pytest.mark.parametrize(
    ("error", "masked"),
    [
        ("550 5.1.1 <ada@example.com>: Recipient address rejected",
         "550 5.1.1 <[address]>: Recipient address rejected"),
        ("553 sorry, bob.smith+tag@mail.example.co.uk is not ours",
         "553 sorry, [address] is not ours"),
        ("421 4.7.0 try again later", "421 4.7.0 try again later"),
    ],
)  # fmt: skip
def test_redact_addresses_masks_every_address(error, masked):
    assert redact_addresses(error) == masked


def test_database_errors_do_not_carry_the_bound_values(tmp_path):
    """A failed INSERT's message, as a traceback would log it, hides the row."""
    url = database_url({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    engine = create_engine(url, **engine_options(url))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (email TEXT UNIQUE)"))
        connection.execute(text("INSERT INTO t VALUES ('ada@example.com')"))
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        connection.execute(
            text("INSERT INTO t VALUES (:email)"), {"email": "ada@example.com"}
        )
    engine.dispose()

    assert "ada@example.com" not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)


def test_mailer_stops_with_status_2_on_a_bad_log_format(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mailer_service", "--once"],
        cwd=ROOT,
        env=child_env(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", LOG_FORMAT="yaml"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2, result.stderr
    assert "configuration error: LOG_FORMAT must be text or json" in result.stderr
