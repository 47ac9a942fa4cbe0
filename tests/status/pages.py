"""Reading the status page's HTML in tests, and logging in as an operator would."""

from __future__ import annotations

from html.parser import HTMLParser

from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.support.admin import snapshot
from tests.support.status_rows import ADMIN_TOKEN


class Elements(HTMLParser):
    """Collects the start tags of a page with their attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record one start tag."""
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        """Return the attributes of every ``tag`` whose attributes include ``attrs``."""
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            a
            for t, a in self.tags
            if t == tag and all(a.get(k) == v for k, v in wanted.items())
        ]


def post_forms(html: str) -> list[dict[str, str | None]]:
    """Return the attributes of every form that posts."""
    return [a for a in Elements(html).find("form") if a.get("method") == "post"]


def csrf_of(html: str) -> str:
    """Return the CSRF token the page's forms carry (they all carry the same)."""
    tokens = {a["value"] for a in Elements(html).find("input", name="csrf")}
    assert len(tokens) == 1, tokens
    return str(tokens.pop())


def log_in(client: FlaskClient, token: str = ADMIN_TOKEN) -> str:
    """Log ``client`` in through the login form; return the CSRF token after."""
    form = csrf_of(client.get("/").data.decode())
    answer = client.post("/login", data={"csrf": form, "token": token, "next": "/"})
    assert answer.status_code == 303, answer.data.decode()
    return csrf_of(client.get("/").data.decode())


def database_state(engine: Engine) -> tuple:
    """Return every outbox row, the suppression list and the attempt history."""
    with engine.connect() as connection:
        suppressed = connection.execute(
            text("SELECT address, reason FROM outbox_suppressions ORDER BY address")
        ).all()
        attempts = connection.execute(
            text("SELECT outbox_id, attempt, result FROM outbox_attempts ORDER BY id")
        ).all()
    return (
        snapshot(engine),
        [tuple(r) for r in suppressed],
        [tuple(r) for r in attempts],
    )
