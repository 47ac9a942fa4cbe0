"""Whole messages: every field Flask-Mail can carry arrives as it was queued.

Each test queues through the contract's enqueue_email, runs a real mailer tick
against aiosmtpd, and reads what came off the wire: envelope and bytes.
"""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mailer_service.admin import cli
from outbox_contract import MailMessage, enqueue_email
from outbox_contract.database import prepare_engine
from tests.support.databases import url_string
from tests.support.messages import DATE, PNG, full_message


def queue(engine: Engine, message: MailMessage, **options) -> int:
    """Queue ``message`` and commit; return its row id."""
    prepare_engine(engine)
    with Session(engine) as session:
        row = enqueue_email(session, message, **options)
        session.commit()
        return row.id


def row_of(engine: Engine, row_id: int) -> dict:
    """Return the outbox row ``row_id`` as a dict."""
    with engine.connect() as connection:
        return dict(
            connection.execute(
                text("SELECT * FROM outbox WHERE id = :id"), {"id": row_id}
            )
            .mappings()
            .one()
        )


def test_whole_message_arrives_as_queued(make_mailer, smtp, engine):
    row_id = queue(engine, full_message())

    assert make_mailer().run_tick() == 1

    [message] = smtp.messages
    [received] = smtp.received
    assert message["From"] == '"Shop, Inc." <shop@example.com>'
    assert message["To"] == '"Doe, John" <jd@example.com>, ann@example.com'
    assert str(message["Cc"]) == "Büro <office@example.com>"
    assert message["Reply-To"] == "Help desk <help@example.com>"
    assert message["X-Order"] == "1234"
    assert message["List-Unsubscribe"] == "<https://shop.example/u>"
    assert message["Date"].datetime == DATE
    assert message["Message-ID"] == row_of(engine, row_id)["message_id"]
    # Bcc is in the envelope only, never in a header.
    assert "Bcc" not in message
    assert b"audit@example.com" not in received.content
    assert received.mail_from == "shop@example.com"
    assert sorted(received.rcpt_tos) == [
        "ann@example.com", "audit@example.com", "jd@example.com", "office@example.com"
    ]  # fmt: skip
    parts = {p.get_filename(): p for p in message.iter_attachments()}
    assert parts["invoice.pdf"].get_content() == b"%PDF-1.4 invoice"
    logo = next(p for p in message.walk() if p.get_filename() == "logo.png")
    assert logo.get_content() == PNG
    assert logo["Content-ID"] == "<logo>"
    assert logo.get_content_disposition() == "inline"
    assert row_of(engine, row_id)["status"] == "sent"


def test_long_display_names_with_commas_arrive_as_one_address_each(
    make_mailer, smtp, engine
):
    """A name too long for one header line folds without losing its quotes."""
    long_name = (
        "A display name longer than a whole header line, which must fold,"
        " really and truly"
    )
    unicode_name = "Zoë Ünicode, Head of the Department of Rather Long Names"
    to = [(long_name, "jd@example.com"), ("Roe, Ann", "ar@example.com")]
    cc = [(unicode_name, "zu@example.com")]
    cc += [(f"Person {n}, Esq.", f"p{n}@example.com") for n in range(6)]
    queue(engine, MailMessage.build(subject="Names", to=to, cc=cc, text="Hello"))

    assert make_mailer().run_tick() == 1

    [message] = smtp.messages
    [received] = smtp.received
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == to
    assert [(a.display_name, a.addr_spec) for a in message["Cc"].addresses] == cc
    headers = received.content.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert max(len(line) for line in headers) <= 78  # folded, as RFC 5322 asks


def test_long_lines_are_encoded_and_arrive_whole(make_mailer, smtp, engine):
    """aiosmtpd refuses a line over 998 octets: the row would fail for good."""
    link = "https://shop.example/track?" + "x" * 5000
    html = f'<p><a href="{link}">track</a></p>' + "é" * 3000
    queue(engine, MailMessage.build(subject="Track", to="a@example.com", html=html,
                                    text="plain " * 400))  # fmt: skip

    assert make_mailer().run_tick() == 1

    [received] = smtp.received
    assert max(len(line) for line in received.content.split(b"\r\n")) <= 998
    [message] = smtp.messages
    assert message.get_body(("html",)).get_content() == html
    assert message.get_body(("plain",)).get_content().rstrip("\n") == "plain " * 400


def test_a_refused_cc_is_recorded_while_to_is_accepted(make_mailer, smtp, engine):
    smtp.refuse_recipients["office@example.com"] = "550 5.1.1 no such user"
    row_id = queue(
        engine,
        MailMessage.build(subject="Hi", to="jd@example.com", cc=["office@example.com"]),
    )

    assert make_mailer().run_tick() == 1

    row = row_of(engine, row_id)
    assert row["status"] == "sent"
    refused = row["refused"]
    refused = json.loads(refused) if isinstance(refused, str) else refused
    assert refused == {"office@example.com": [550, "5.1.1 no such user"]}
    [received] = smtp.received
    assert received.rcpt_tos == ["jd@example.com"]


def test_outbox_show_prints_recipients_and_outcomes(make_mailer, smtp, engine,
                                                    database_url):  # fmt: skip
    smtp.refuse_recipients["office@example.com"] = "550 5.1.1 no such user"
    row_id = queue(engine, full_message())
    make_mailer().run_tick()
    env = {"DATABASE_URL": url_string(database_url)}

    shown = CliRunner().invoke(cli, ["show", str(row_id), "--json"], env=env)
    text_shown = CliRunner().invoke(cli, ["show", str(row_id)], env=env)

    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    outcomes = {
        r["address"]: (r["kind"], r["outcome"], r["code"]) for r in data["recipients"]
    }
    assert outcomes == {
        "jd@example.com": ("to", "accepted", None),
        "ann@example.com": ("to", "accepted", None),
        "office@example.com": ("cc", "refused", 550),
        "audit@example.com": ("bcc", "accepted", None),
    }
    assert [a["filename"] for a in data["attachments"]] == ["invoice.pdf", "logo.png"]
    assert data["attachments"][1]["bytes"] == len(PNG)
    assert text_shown.exit_code == 0
    assert (
        "cc   Büro <office@example.com>  refused 550 5.1.1 no such user"
        in text_shown.output
    )
    missing = CliRunner().invoke(cli, ["show", "999999"], env=env)
    assert missing.exit_code == 1 and "no outbox row 999999" in missing.output


def test_every_recipient_refused_follows_the_reply_code(make_mailer, smtp, engine):
    smtp.refuse_recipients["gone@example.com"] = "550 5.1.1 no such user"
    smtp.refuse_recipients["full@example.com"] = "452 4.2.2 mailbox full"
    gone = queue(engine, MailMessage.build(subject="A", to="gone@example.com"))
    full = queue(engine, MailMessage.build(subject="B", to="full@example.com"))

    make_mailer().run_tick()

    assert row_of(engine, gone)["status"] == "failed"
    assert row_of(engine, full)["status"] == "pending"  # retried later
    assert row_of(engine, full)["last_error"].startswith("452")


def test_date_and_message_id_are_the_same_on_every_attempt(make_mailer, smtp, engine):
    queue(engine, MailMessage.build(subject="Again", to="a@example.com"))
    smtp.fail_next("451 try later")
    mailer = make_mailer(backoff_seconds=0.001, backoff_max_seconds=0.001)

    mailer.run_tick()
    mailer.run_tick()

    first, second = (r.content for r in smtp.received)
    header = lambda raw, name: [  # noqa: E731
        line for line in raw.split(b"\r\n") if line.startswith(name)
    ]
    assert header(first, b"Date:") == header(second, b"Date:") != []
    assert header(first, b"Message-ID:") == header(second, b"Message-ID:") != []
    assert len(smtp.messages) == 1


def test_a_plain_row_written_by_hand_is_delivered(make_mailer, smtp, engine):
    """The plain SQL contract: today's columns, no message JSON, still sends."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO outbox (recipient, subject, body_text, body_html,"
                " message_id) VALUES ('bob@example.com', 'From psql', 'Hello',"
                " '<p>Hello</p>', '<by-hand-1@example.com>')"
            )
        )

    assert make_mailer().run_tick() == 1

    [message] = smtp.messages
    assert message["To"] == "bob@example.com"
    assert message["Message-ID"] == "<by-hand-1@example.com>"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello</p>"
    assert message["Date"] is not None
