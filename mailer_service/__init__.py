"""The mailer service: a separate process that relays the outbox to SMTP.

Run it with ``python -m mailer_service`` (or the ``mailer-service`` script).
The tick is in :mod:`mailer_service.mailer`, its SQL in ``queries/``, and the
retry policy in :mod:`mailer_service.policy`. The app that carries the
database and Flask-Mail is :mod:`mailer_service.app`.

Importing the package loads nothing more: ``outbox`` commands and the status
page import their modules only, never Flask-Mail.
"""

from __future__ import annotations

from typing import Any

_FROM_APP = ("create_app", "db", "mail")  # still importable from the package


def __getattr__(name: str) -> Any:
    """Load the app module on first use of ``create_app``, ``db`` or ``mail``."""
    if name in _FROM_APP:
        from mailer_service import app

        return getattr(app, name)
    raise AttributeError(f"module 'mailer_service' has no attribute {name!r}")
