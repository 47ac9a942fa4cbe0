"""Schemathesis against a live gunicorn on PostgreSQL, with every check it has.

Each operation of /openapi.json gets a bounded number of generated requests,
valid and invalid. Every answer must conform to the document (status, headers,
content type, schema), none may be a 5xx, and after each one every user has
exactly its one welcome mail: nothing is ever half written.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.formats import get_default_format_strategies
from sqlalchemy import URL, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from signup_service.validation import MAX_EMAIL_LENGTH
from tests.support.apps import TEST_APP_ENV
from tests.support.databases import PostgresServer, url_string
from tests.support.processes import ROOT, child_env, free_port, wait_until

MAX_EXAMPLES = 40  # generated requests per operation and phase: bounded, not exhaustive
START_TIMEOUT = 120.0  # seconds for gunicorn to answer; the machine is shared
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def fuzz_database(postgres_server: PostgresServer) -> Iterator[URL]:
    """One migrated PostgreSQL database for the whole run."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="module")
def live_server(fuzz_database: URL, tmp_path_factory) -> Iterator[str]:
    """``gunicorn 'signup_service:create_app()'`` on a free port; its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = child_env(
        DATABASE_URL=url_string(fuzz_database),
        SECRET_KEY=TEST_APP_ENV["SECRET_KEY"],
        # The fuzzer signs up from one address far faster than any person.
        SIGNUP_RATE_LIMIT="1000000/minute",
    )
    command = [
        str(VENV_BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "signup_service:create_app()",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=output
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), START_TIMEOUT)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert "Traceback" not in log.read_text(), log.read_text()


def _answers(url: str) -> bool:
    """Tell whether ``url`` answers at all."""
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def fuzz_engine(fuzz_database: URL) -> Iterator[Engine]:
    """An engine for checking what the service wrote."""
    engine = create_engine(fuzz_database, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def deliverable_emails() -> Iterator[None]:
    """Generate ``format: email`` values the way the document narrows them.

    schemathesis's own email strategy ignores the schema's ``pattern``, so it
    offers special-use domains (``x@y.test``) as valid data; the document says
    they are refused, and the service refuses them.
    """
    default = get_default_format_strategies()["email"]
    schemathesis.openapi.format(
        "email",
        st.emails().filter(
            lambda address: (
                len(address) <= MAX_EMAIL_LENGTH
                and address.rpartition(".")[2].lower() not in SPECIAL_USE_DOMAIN_NAMES
            )
        ),
    )
    yield
    schemathesis.openapi.format("email", default)


@pytest.fixture(scope="module")
def api_schema(live_server: str, deliverable_emails: None):
    """The document the live service serves."""
    return schemathesis.openapi.from_url(f"{live_server}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Give the test node the ``_nodeid`` schemathesis's lazy loader reads.

    schemathesis 4.32 renames each generated test through the private
    ``Node._nodeid``, which pytest 9 no longer has.
    """
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def half_written(engine: Engine) -> list[tuple]:
    """Return users without exactly one outbox row, and rows without a user."""
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT u.id, count(o.id) FROM users u"
                    " LEFT JOIN outbox o ON o.dedupe_key = 'welcome:' || u.id"
                    " GROUP BY u.id HAVING count(o.id) <> 1"
                    " UNION ALL SELECT NULL, count(*) FROM outbox"
                    " WHERE dedupe_key IS NULL HAVING count(*) > 0"
                )
            )
        ]


@pytest.fixture(scope="module")
def real_token(live_server: str, fuzz_engine: Engine) -> str:
    """A genuine confirmation token, from a signup through the live service."""
    request = urllib.request.Request(
        f"{live_server}/signup",
        data=json.dumps({"email": "fuzz-target@example.com"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        user_id = json.loads(response.read())["id"]
    with fuzz_engine.connect() as connection:
        body = connection.execute(
            text("SELECT body_text FROM outbox WHERE dedupe_key = 'welcome:' || :id"),
            {"id": user_id},
        ).scalar_one()
    return re.search(r"/confirm/(\S+)", body).group(1)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi_fuzz_conforms_and_never_half_writes(case, fuzz_engine, real_token):
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and case.headers and "Idempotency-Key" in case.headers:
        # A key reused with another body is a conflict the document declares
        # (422), as a taken email is (409); only 409 is excused by schemathesis's
        # positive-data check. Unique keys keep the valid requests valid.
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    if positive and case.path_parameters and "token" in case.path_parameters:
        # Any string fits the schema of an opaque signed token, but only ours
        # is valid; the invalid ones come from the negative cases (and 400s).
        case.path_parameters["token"] = real_token
    case.call_and_validate()

    assert half_written(fuzz_engine) == []
