"""Abuse limits: ``POST /signup`` is rate limited per client address.

The client address is ``request.remote_addr``. Behind ``TRUSTED_PROXY_COUNT``
proxies, Werkzeug's ProxyFix takes it from that many ``X-Forwarded-For``
entries, counted from the right, where our own proxies wrote them; with no
trusted proxy the header is ignored, so a client cannot choose its own key.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response, current_app, jsonify, request
from flask_limiter import Limiter, RateLimitExceeded
from werkzeug.middleware.proxy_fix import ProxyFix

logger = logging.getLogger(__name__)

SIGNUP_ENDPOINT = "signup.signup"
FALLBACK_RETRY_AFTER = 60  # seconds, when the limit's window cannot be read


def client_address() -> str:
    """Return the address a request is counted against."""
    return request.remote_addr or "unknown"


def signup_limit() -> str:
    """Return ``SIGNUP_RATE_LIMIT`` of the app handling the request."""
    return current_app.config["SIGNUP_RATE_LIMIT"]


def init_app(app: Flask) -> None:
    """Trust the configured proxies and rate limit ``POST /signup`` on ``app``."""
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    storage = app.config["RATELIMIT_STORAGE_URI"]
    # One Limiter per app, not one per module: a Limiter keeps its storage and
    # limits on itself, so a shared one would mix the counts of every app
    # built in a process (the tests build many).
    limiter = Limiter(
        key_func=client_address,
        storage_uri=storage,
        # A shared storage that goes down must not turn signups into 500s:
        # count in this worker's memory (and log it) until it is back.
        in_memory_fallback_enabled=not storage.startswith("memory://"),
    )
    limiter.init_app(app)
    app.extensions["signup_limiter"] = limiter
    # The limit wraps the registered view, so it binds to this app's Limiter.
    view = app.view_functions[SIGNUP_ENDPOINT]
    app.view_functions[SIGNUP_ENDPOINT] = limiter.limit(signup_limit)(view)
    app.register_error_handler(RateLimitExceeded, too_many_requests)


def too_many_requests(err: RateLimitExceeded) -> tuple[Response, int]:
    """Answer 429 as JSON, with ``Retry-After`` until the window resets."""
    limiter: Limiter = current_app.extensions["signup_limiter"]
    current = limiter.current_limit
    retry_after = (
        # window[0] is when the window resets (reset_at rounds it up a second).
        max(1, math.ceil(current.window[0] - time.time()))
        if current is not None
        else FALLBACK_RETRY_AFTER
    )
    logger.warning(
        "rate limited",
        extra={"action": "rate_limited", "client": client_address()},
    )
    response = jsonify(
        error=f"too many signups from your address ({err.description});"
        f" try again in {retry_after} seconds"
    )
    response.headers["Retry-After"] = str(retry_after)
    return response, 429
