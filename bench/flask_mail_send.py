"""The Flask-Mail limit: what the mailer's SMTP library costs, with nothing else.

``python -m bench.flask_mail_send PORT COUNT`` builds a ``flask_mail.Message``
per message (subject, recipient, text and HTML bodies, a fixed Message-ID)
and sends them all over one ``mail.connect()`` connection to 127.0.0.1:PORT,
then prints a :class:`bench.messages.LoopTimes` JSON line. Building the
message is inside the loop because the mailer builds one per row too.
"""

from __future__ import annotations

import sys
import time

from flask import Flask
from flask_mail import Mail, Message

from bench.messages import SENDER, LoopTimes, parse_loop_args, welcome

mail = Mail()


def create_app(port: int) -> Flask:
    """Return a bare Flask app whose Flask-Mail points at 127.0.0.1:``port``."""
    app = Flask(__name__)
    app.config.update(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=port,
        MAIL_USE_TLS=False,
        MAIL_USE_SSL=False,
        MAIL_DEFAULT_SENDER=SENDER,
    )
    mail.init_app(app)
    return app


def send_all(app: Flask, count: int, prefix: str) -> LoopTimes:
    """Build and send ``count`` messages over one connection; time the 250s."""
    first = last = 0.0
    with app.app_context(), mail.connect() as connection:
        for index in range(count):
            fields = welcome(prefix, index)
            message = Message(
                subject=fields.subject,
                recipients=[fields.recipient],
                body=fields.body_text,
                html=fields.body_html,
            )
            # msgId is the one Message-ID header, as the mailer sets it.
            message.msgId = fields.message_id
            connection.send(message)  # raises unless accepted
            last = time.perf_counter()
            if index == 0:
                first = last
    return LoopTimes(sent=count, first=first, last=last)


def main() -> int:
    """Send and report; the exit status is 0 when all were accepted."""
    args = parse_loop_args(__doc__)
    print(send_all(create_app(args.port), args.count, args.prefix).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
