"""The migrated template: an unreachable server skips, a failing migration fails."""

from __future__ import annotations

import pytest
from alembic.util import CommandError
from sqlalchemy import URL

from tests.support.databases import (
    PostgresServer,
    PostgresUnavailable,
    migrated_postgres,
)


def test_migrated_postgres_reports_an_unreachable_server_as_unavailable():
    # Port 1 refuses connections at once; nothing listens there.
    refused = URL.create("postgresql", username="postgres", host="127.0.0.1", port=1)

    with pytest.raises(PostgresUnavailable, match="refused"):
        with migrated_postgres(refused):
            pass


def test_migrated_postgres_raises_a_failing_migration(postgres_server: PostgresServer):
    """A broken migration must error the run, not pass for a missing server."""
    with pytest.raises(CommandError, match="no-such-revision"):
        with migrated_postgres(postgres_server.admin_url, revision="no-such-revision"):
            pass
