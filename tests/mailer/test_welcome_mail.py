"""The welcome mail end to end: signup request in, received message out."""

from __future__ import annotations

from tests.support.outbox import outbox_rows

HOSTILE_NAME = '<img src=x onerror="alert(1)"> Bcc: victim@example.com'


def test_welcome_mail_has_text_and_html_parts_and_configured_headers(
    make_app, make_mailer, smtp, engine
):
    settings = {
        "SIGNUP_WELCOME_SUBJECT": "Bienvenue chez nous",
        "MAIL_DEFAULT_SENDER": "Shop Team <hello@shop.example>",
    }
    client = make_app(**settings).test_client()
    response = client.post(
        "/signup", json={"email": "Ada@Example.com", "name": HOSTILE_NAME}
    )
    assert response.status_code == 201

    assert make_mailer(env=settings).run_tick() == 1

    [row] = outbox_rows(engine)
    [message] = smtp.messages
    assert message["Subject"] == "Bienvenue chez nous"
    assert message["From"] == "Shop Team <hello@shop.example>"
    assert message["To"] == "ada@example.com"
    assert message.get_all("Message-ID") == [row["message_id"]]
    assert row["message_id"].endswith("@shop.example>")
    assert message.get_all("Bcc") is None  # the name never reaches a header
    parts = {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert set(parts) == {"text/plain", "text/html"}
    assert f"Hello {HOSTILE_NAME}," in parts["text/plain"]
    assert "<img" not in parts["text/html"]
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in parts["text/html"]
    assert "ada@example.com" in parts["text/html"]
