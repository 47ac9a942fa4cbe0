"""GET /metrics counts requests by endpoint and status, signups, and the queue."""

from __future__ import annotations

from tests.support.metrics import Delta, family_names, sample
from tests.support.promtool import check_metrics


def requests(endpoint: str, status: str) -> tuple[str, dict[str, str]]:
    """Name one signup_http_requests_total sample."""
    return ("signup_http_requests_total", {"endpoint": endpoint, "status": status})


def test_metrics_count_requests_by_endpoint_and_status(client):
    delta = Delta(
        requests("signup.signup", "201"),
        requests("signup.signup", "409"),
        requests("signup.signup", "422"),
        requests("signup.healthz", "200"),
        requests("unmatched", "404"),
        ("signup_http_request_duration_seconds_count", {"endpoint": "signup.signup"}),
        ("signup_users_created_total", {}),
    )

    client.post("/signup", json={"email": "ada@example.com"})
    client.post("/signup", json={"email": "ada@example.com"})
    client.post("/signup", json={"email": "not an address"})
    client.get("/healthz")
    client.get("/no/such/page/ada@example.com")

    assert delta() == [1, 1, 1, 1, 1, 3, 1]


def test_metrics_endpoint_serves_the_exposition_with_queue_gauges(client):
    assert client.post("/signup", json={"email": "ada@example.com"}).status_code == 201

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert sample(response.data, "outbox_rows", status="pending") == 1
    assert sample(response.data, "outbox_rows", status="sent") == 0
    assert sample(response.data, "outbox_database_up") == 1
    assert {
        "signup_http_requests_total",
        "signup_http_request_duration_seconds",
        "signup_users_created_total",
        "outbox_rows",
        "outbox_oldest_due_age_seconds",
    } <= family_names(response.data)


def test_metrics_labels_never_carry_paths_or_addresses(client):
    client.get("/ada@example.com")
    client.post("/signup", json={"email": "grace@example.com"})

    body = client.get("/metrics").data.decode()

    assert "@" not in body
    assert "/ada" not in body


def test_metrics_exposition_passes_promtool(client):
    client.post("/signup", json={"email": "ada@example.com"})
    client.get("/healthz")

    lint = check_metrics(client.get("/metrics").data)

    assert lint.returncode == 0, lint.stdout + lint.stderr
