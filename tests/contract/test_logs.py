"""The text log line shows the structured ``extra`` fields, not only the message."""

from __future__ import annotations

import logging
import sys

from outbox_contract.logs import FieldsFormatter, extra_fields


def make_record(**extra: object) -> logging.LogRecord:
    """Return a record as ``logger.info("delivered", extra=extra)`` makes it."""
    record = logging.LogRecord(
        "mailer", logging.INFO, __file__, 1, "delivered", (), None
    )
    record.__dict__.update(extra)
    return record


def test_fields_formatter_appends_extra_fields_in_order() -> None:
    record = make_record(action="deliver", outbox_id=42, result="sent")

    line = FieldsFormatter("%(levelname)s %(message)s").format(record)

    assert line == "INFO delivered action=deliver outbox_id=42 result=sent"


def test_fields_formatter_without_extra_is_the_plain_line() -> None:
    assert FieldsFormatter("%(message)s").format(make_record()) == "delivered"


def test_extra_fields_ignores_the_standard_attributes() -> None:
    assert extra_fields(make_record(code=250)) == {"code": 250}


def test_fields_formatter_keeps_the_traceback_after_the_fields() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = make_record(action="tick_failed")
        record.exc_info = sys.exc_info()

    line = FieldsFormatter("%(message)s").format(record)

    first, *rest = line.splitlines()
    assert first == "delivered action=tick_failed"
    assert rest[-1] == "RuntimeError: boom"
