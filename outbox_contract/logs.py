"""Logging for every process: one line per event, with its structured fields.

Code logs with ``extra={"action": ..., "outbox_id": ...}``; the text format
shows those fields as ``key=value`` after the message, so they are visible
and greppable, not only present on the record.
"""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """Return the ``extra={...}`` fields of ``record``, in the order they were set."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class FieldsFormatter(logging.Formatter):
    """The standard text line, followed by the record's extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record``, appending its extra fields."""
        line = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in extra_fields(record).items())
        if not fields:
            return line
        # Keep a traceback, if any, after the fields rather than splitting them.
        head, newline, tail = line.partition("\n")
        return f"{head} {fields}{newline}{tail}"


def configure_logging(level: int = logging.INFO) -> None:
    """Send INFO and above to stderr, one line per event, unless already set up."""
    root = logging.getLogger()
    if root.handlers:
        return  # the host application (or a test runner) owns logging
    handler = logging.StreamHandler()
    handler.setFormatter(FieldsFormatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
