"""The bytes on the wire are Flask-Mail's, byte for byte, only written faster.

Each message is built as the mailer builds it, then flattened both ways: by
``email.policy.SMTP`` (what Flask-Mail's ``as_bytes`` does) and by
:func:`mailer_service.wire.flatten`. One MIME tree serves both, so the
multipart boundaries, chosen at the first flattening, are the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email import policy
from types import SimpleNamespace

import pytest
from flask import Flask

from mailer_service.app import create_app
from mailer_service.message import build_message
from mailer_service.store import ClaimedRow
from mailer_service.wire import flatten
from outbox_contract import MailMessage
from tests.support.messages import DATE, full_message

LONG_NAME = "A display name longer than a whole header line, which must fold, really"

MESSAGES = {
    "plain": MailMessage.build(
        subject="Welcome aboard!", to=["a@example.com"], text="Hi"
    ),
    "every field": full_message(),
    "long names": MailMessage.build(
        subject="Names",
        to=[(LONG_NAME + " and truly", "jd@example.com"), ("Roe, Ann", "ar@x.org")],
        cc=[("Zoë Ünicode, Head of the Department of Rather Long Names", "z@x.org")]
        + [(f"Person {n}, Esq.", f"p{n}@example.com") for n in range(6)],
        text="Hello",
    ),
    "long and unicode subjects": MailMessage.build(
        subject="x" * 300,
        to=["a@example.com"],
        headers={"X-Campaign": "spring ünïcode", "X-Long": "word " * 60},
        text="From the start\n.\nFrom here on, a line that mbox would mangle\n",
    ),
    "unicode subject": MailMessage.build(
        subject="Ünïcode sübject — long enough that it has to fold somewhere, surely",
        to=[("Zoë", "z@example.com")],
        text="héllo",
        html="<p>é</p>",
    ),
    "a long HTML line": MailMessage.build(
        subject="Track it",
        to=["a@example.com"],
        text="See the link.",
        html=f'<a href="https://shop.example/t?{"x" * 5000}">track</a>',
    ),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """A mailer app, for Flask-Mail's settings; no database is touched."""
    folder = tmp_path_factory.mktemp("wire")
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'unused.db'}",
            "MAIL_DEFAULT_SENDER": "Outbox Demo <no-reply@example.com>",
        }
    )
    with app.app_context():
        yield app


def mime_of(message: MailMessage):
    """Build ``message`` as the mailer builds a claimed row; return its MIME tree."""
    row = ClaimedRow(
        id=1,
        recipient=message.to[0].address,
        subject=message.subject,
        body_text=message.text,
        body_html=message.html,
        message_id="<1@example.com>",
        attempts=0,
        message=json.dumps(message.to_json(DATE)),
        created_epoch=time.time(),
    )
    parts = [
        SimpleNamespace(
            filename=a.filename,
            content_type=a.content_type,
            content=a.content,
            disposition=a.disposition,
            headers=[list(h) for h in a.headers],
        )
        for a in message.attachments
    ]
    return build_message(row, parts)._message()


@pytest.mark.parametrize("name", MESSAGES)
def test_flatten_writes_exactly_what_the_smtp_policy_writes(app, name):
    mime = mime_of(MESSAGES[name])
    theirs = mime.as_bytes(policy=policy.SMTP)  # picks the boundaries

    assert flatten(mime) == theirs


@pytest.mark.parametrize("name", MESSAGES)
def test_flatten_first_then_the_smtp_policy_agree_too(app, name):
    mime = mime_of(MESSAGES[name])
    ours = flatten(mime)  # picks the boundaries this time

    assert ours == mime.as_bytes(policy=policy.SMTP)
    assert all(len(line) <= 998 for line in ours.split(b"\r\n"))
