"""``GET /openapi.json``: the OpenAPI 3.1 document of every endpoint, by hand.

The document is written out here, next to the code it describes; a test
checks that every route of the app is in it, and schemathesis checks the
live service against it.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from flask import Blueprint, Response, jsonify

from signup_service.idempotency import HEADER as IDEMPOTENCY_HEADER
from signup_service.validation import (
    FORBIDDEN_NAME_CATEGORIES,
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
)

bp = Blueprint("openapi", __name__)

# The domains email-validator refuses however well-formed the address is.
SPECIAL_USE_DOMAINS_PATTERN = (
    r"^(?!.*\.(" + "|".join(SPECIAL_USE_DOMAIN_NAMES) + r")\.?$)"
)

ERROR = {"$ref": "#/components/schemas/Error"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def json_error(description: str, **extra: Any) -> dict[str, Any]:
    """Return a response object whose body is the error schema."""
    return {
        "description": description,
        "content": {"application/json": {"schema": ERROR}},
        **extra,
    }


def page_or_json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return a response that is HTML, or JSON for ``Accept: application/json``."""
    return {
        "description": description,
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": schema},
        },
    }


@cache
def name_pattern() -> str:
    """Return a regex for names without the characters the validator refuses."""
    ranges: list[list[int]] = []
    for code in range(0x110000):
        if unicodedata.category(chr(code)) in FORBIDDEN_NAME_CATEGORIES:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "^[^" + "".join(f"{_escape(a)}-{_escape(b)}" for a, b in ranges) + "]*$"


def _escape(code: int) -> str:
    r"""Return ``\uXXXX`` in the BMP, which every regex dialect reads; else the char."""
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def signup_body(form: bool) -> dict[str, Any]:
    """Return the schema of a signup, as JSON or as form fields."""
    name: dict[str, Any] = {"type": "string", "maxLength": MAX_NAME_LENGTH}
    name["pattern"] = name_pattern()
    return {
        "type": "object",
        "required": ["email"],
        "properties": {
            "email": {
                "type": "string",
                "format": "email",
                "maxLength": MAX_EMAIL_LENGTH,
            },
            "name": name if form else {"anyOf": [name, {"type": "null"}]},
        },
    }


def signup_operation() -> dict[str, Any]:
    """Return ``POST /signup``."""
    form = {"schema": signup_body(form=True)}
    return {
        "summary": "Sign up: create the user and queue the welcome mail at once.",
        "operationId": "signup",
        "parameters": [
            {
                "name": IDEMPOTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": "Repeat the request safely for 24 hours (see docs).",
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": signup_body(form=False)},
                "application/x-www-form-urlencoded": form,
                "multipart/form-data": form,
            },
        },
        "responses": {
            "201": {
                "description": "Created, or the replay of a request with this key.",
                "headers": {
                    "Idempotent-Replayed": {
                        "description": "true on a replayed answer.",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
                },
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/User"}
                    }
                },
            },
            "400": json_error("Unreadable body, or a malformed Idempotency-Key."),
            "409": json_error("The address is already registered."),
            "413": json_error("The body is over 64 KiB."),
            "422": json_error(
                "A field is invalid, or the Idempotency-Key came with another body."
            ),
            "429": json_error(
                "Too many signups from this address.", headers=RETRY_AFTER
            ),
            "503": json_error("The database is unreachable.", headers=RETRY_AFTER),
        },
    }


def confirm_operations() -> dict[str, Any]:
    """Return ``GET`` and ``POST /confirm/{token}``."""
    token = {
        "name": "token",
        "in": "path",
        "required": True,
        "description": "The signed token from the welcome mail's link.",
        "schema": {"type": "string", "minLength": 1},
    }
    state = {"$ref": "#/components/schemas/Confirmation"}
    errors = {
        "400": page_or_json("The token is not valid (changed or not ours).", ERROR),
        "404": page_or_json("The token's user no longer exists.", ERROR),
        "410": page_or_json("The token has expired.", ERROR),
        "503": json_error("The database is unreachable.", headers=RETRY_AFTER),
    }
    return {
        "parameters": [token],
        "get": {
            "summary": "Show the confirmation button; changes nothing.",
            "operationId": "showConfirmation",
            "responses": {"200": page_or_json("The page.", state), **errors},
        },
        "post": {
            "summary": "Confirm the address; confirming again is harmless.",
            "operationId": "confirm",
            "responses": {"200": page_or_json("Confirmed.", state), **errors},
        },
    }


def status_operation(summary: str, operation_id: str, *codes: str) -> dict[str, Any]:
    """Return a GET answering ``{"status": ...}``, and errors with ``codes``."""
    status = {"type": "object", "required": ["status"]}
    status["properties"] = {"status": {"type": "string"}}
    ok = {"description": "OK", "content": {"application/json": {"schema": status}}}
    responses = {"200": ok} | {code: json_error("Not ready.") for code in codes}
    return {
        "get": {"summary": summary, "operationId": operation_id, "responses": responses}
    }


COMPONENTS = {
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
            "additionalProperties": False,
        },
        "User": {
            "type": "object",
            "required": ["id", "email", "name"],
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": "string"},
                "name": {"type": ["string", "null"]},
            },
            "additionalProperties": False,
        },
        "Confirmation": {
            "type": "object",
            "required": ["id", "email", "confirmed_at"],
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": "string"},
                "confirmed_at": {"type": ["string", "null"], "format": "date-time"},
            },
            "additionalProperties": False,
        },
    }
}


def document() -> dict[str, Any]:
    """Return the whole OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Signup service",
            "version": "1.0.0",
            "description": "Sign up, confirm the address. Errors are JSON"
            ' {"error": "..."}; see docs/signup-api.md.',
        },
        "paths": {
            "/signup": {"post": signup_operation()},
            "/confirm/{token}": confirm_operations(),
            "/healthz": status_operation("Liveness.", "healthz"),
            "/readyz": status_operation(
                "Readiness: the database answers.", "readyz", "503"
            ),
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {
                                "application/json": {"schema": {"type": "object"}}
                            },
                        }
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of every gunicorn worker.",
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "The Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": COMPONENTS,
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """Serve the OpenAPI document."""
    return jsonify(document())
