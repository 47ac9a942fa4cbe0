"""GET /openapi.json documents every route, method and status the app has."""

from __future__ import annotations

import re
import unicodedata

import pytest
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from signup_service.openapi import SPECIAL_USE_DOMAINS_PATTERN, name_pattern
from signup_service.validation import FORBIDDEN_NAME_CATEGORIES

UNDOCUMENTED_METHODS = {"HEAD", "OPTIONS"}  # Werkzeug answers them for every route


def openapi_path(rule: str) -> str:
    """Turn a Werkzeug rule like ``/confirm/<path:token>`` into ``/confirm/{token}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def document(client) -> dict:
    """The served document."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_openapi_is_version_3_1(document):
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"]


def test_openapi_documents_every_route_and_method(app, document):
    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - UNDOCUMENTED_METHODS
    }
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }

    assert routes == documented


def test_openapi_signup_documents_bodies_statuses_and_the_key(document):
    operation = document["paths"]["/signup"]["post"]

    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    assert set(operation["responses"]) == {
        "201",
        "400",
        "409",
        "413",
        "422",
        "429",
        "503",
    }
    assert operation["responses"]["429"]["headers"]["Retry-After"]["required"]
    [key] = operation["parameters"]
    assert (key["name"], key["in"], key["required"]) == (
        "Idempotency-Key",
        "header",
        False,
    )


def test_openapi_confirm_documents_pages_and_json(document):
    item = document["paths"]["/confirm/{token}"]

    for method in ("get", "post"):
        responses = item[method]["responses"]
        assert {"200", "400", "404", "410"} <= set(responses)
        for status in ("200", "400", "404", "410"):
            assert set(responses[status]["content"]) == {
                "text/html",
                "application/json",
            }


def test_openapi_error_schema_is_shared(document):
    error = document["components"]["schemas"]["Error"]

    assert error["required"] == ["error"]
    for item in document["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def test_openapi_name_pattern_is_exactly_the_validator_rule():
    # fullmatch: Python's $ would also match before a final newline.
    pattern = re.compile(name_pattern())

    for code in range(0x110000):
        allowed = unicodedata.category(chr(code)) not in FORBIDDEN_NAME_CATEGORIES
        assert bool(pattern.fullmatch(f"Ada{chr(code)}")) is allowed, hex(code)


@pytest.mark.parametrize("domain", SPECIAL_USE_DOMAIN_NAMES)
def test_openapi_email_pattern_refuses_special_use_domains(domain):
    pattern = re.compile(SPECIAL_USE_DOMAINS_PATTERN)

    assert not pattern.match(f"a@b.{domain}")
    assert pattern.match(f"a@{domain}.example.com")


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_unsupported_method_answers_405_with_allow(client, method):
    response = getattr(client, method)("/signup")

    assert response.status_code == 405
    assert "error" in response.get_json()
    assert "POST" in response.headers["Allow"]
