"""Logging for every process: one line per event, with its structured fields.

Code logs with ``extra={"action": ..., "outbox_id": ...}``. ``LOG_FORMAT=text``
(the default) shows those fields as ``key=value`` after the message, so they
are visible and greppable; ``LOG_FORMAT=json`` writes one JSON object per line
with the same fields as keys. Either way, email addresses are masked: a log
line names an outbox id, never a recipient (personal data).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from outbox_contract.settings import ConfigError, raw

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOG_FORMATS = ("text", "json")  # the values LOG_FORMAT accepts
# JSON keys for the standard attributes, short and conventional.
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Something@something, as SMTP replies quote addresses ("550 <ada@x.org> unknown").
_ADDRESS = re.compile(r"[^\s<>()\[\]@,;:\"']+@[^\s<>()\[\]@,;:\"']+")
ADDRESS_MASK = "[address]"


def redact_addresses(text: str) -> str:
    """Replace every email address in ``text`` with ``[address]``."""
    return _ADDRESS.sub(ADDRESS_MASK, text)


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """Return the ``extra={...}`` fields of ``record``, in the order they were set."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class FieldsFormatter(logging.Formatter):
    """The standard text line, followed by the record's extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record``, appending its extra fields; mask addresses."""
        line = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in extra_fields(record).items())
        if fields:
            # Keep a traceback, if any, after the fields rather than splitting them.
            head, newline, tail = line.partition("\n")
            line = f"{head} {fields}{newline}{tail}"
        return redact_addresses(line)


class JsonFieldsFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message and the extra fields."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Mask addresses in every string value, the traceback included."""
        return {
            key: redact_addresses(value) if isinstance(value, str) else value
            for key, value in log_data.items()
        }


def log_format(environ: Mapping[str, str] = os.environ) -> str:
    """Read ``LOG_FORMAT``: ``text`` (the default) or ``json``."""
    value = (raw(environ, "LOG_FORMAT") or "text").lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be text or json, got {value!r}")
    return value


def make_formatter(kind: str) -> logging.Formatter:
    """Return the formatter for a ``LOG_FORMAT`` value."""
    if kind == "json":
        return JsonFieldsFormatter(LOG_FORMAT, rename_fields=JSON_RENAMES)
    return FieldsFormatter(LOG_FORMAT)


def configure_logging(
    level: int = logging.INFO, environ: Mapping[str, str] = os.environ
) -> None:
    """Send INFO and above to stderr, one line per event, unless already set up.

    Raises :class:`ConfigError` for a bad ``LOG_FORMAT``, even when the host
    application owns logging, so a typo never goes unnoticed.
    """
    formatter = make_formatter(log_format(environ))
    root = logging.getLogger()
    if root.handlers:
        return  # the host application (or a test runner) owns logging
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
