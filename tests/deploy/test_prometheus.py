"""deploy/prometheus: promtool accepts the config and rules, and the rule tests pass.

The alerts and the scrape config must also match what the code exports and
where compose runs it: a renamed metric or a moved port breaks a test here,
not an alert in production.
"""

from __future__ import annotations

import re

import yaml
from prometheus_client import REGISTRY, CollectorRegistry
from werkzeug.test import Client

from mailer_service.web import MetricsApp
from outbox_contract.metrics import QueueCollector, RegistryView
from signup_service import create_app
from signup_service.database import db
from tests.support import ROOT
from tests.support.deployfiles import service_env
from tests.support.metrics import family_names
from tests.support.promtool import prometheus_file, promtool

# A series name of ours in a PromQL expression.
_SERIES = re.compile(r"\b((?:outbox|mailer|signup)_[a-z_]+)\b")


def test_promtool_accepts_the_scrape_config():
    result = promtool("check", "config", str(prometheus_file("prometheus.yml")))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_accepts_the_alerting_rules():
    result = promtool("check", "rules", str(prometheus_file("alerts.yml")))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rules found" in result.stdout


def test_promtool_rule_tests_pass():
    result = promtool("test", "rules", str(prometheus_file("alerts_test.yml")))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rule_tests_can_fail(tmp_path):
    """A threshold moved in the rules breaks the rule tests."""
    rules = prometheus_file("alerts.yml").read_text()
    assert "> 600" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace("> 600", "> 6000"))
    tests = tmp_path / "alerts_test.yml"
    tests.write_text(prometheus_file("alerts_test.yml").read_text())

    result = promtool("test", "rules", str(tests))

    assert result.returncode != 0
    assert "OutboxOldestDueRowTooOld" in result.stdout + result.stderr


def test_alerts_name_only_metrics_the_services_export(tmp_path):
    exported = mailer_families() | signup_families(tmp_path)
    rules = yaml.safe_load(prometheus_file("alerts.yml").read_text())
    expressions = [r["expr"] for g in rules["groups"] for r in g["rules"]]

    used = {name for expr in expressions for name in _SERIES.findall(expr)}

    assert used, expressions
    assert used <= exported, used - exported
    assert {r["alert"] for g in rules["groups"] for r in g["rules"]} == {
        "OutboxOldestDueRowTooOld",
        "OutboxDeliveryFailureRatioHigh",
        "OutboxNoMailerUp",
    }


def mailer_families() -> set[str]:
    """Return the families a mailer's /metrics declares (queue gauges aside)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RegistryView(REGISTRY))
    body = Client(MetricsApp(registry, _Idle(), 1.0)).get("/metrics").data
    return family_names(body)


def signup_families(tmp_path) -> set[str]:
    """Return the families the signup's /metrics declares, queue gauges included."""
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"})
    try:
        with app.app_context():
            queue = QueueCollector(db.engine)
        body = app.test_client().get("/metrics").data
    finally:
        with app.app_context():
            db.engine.dispose()
    names = {metric.name for metric in queue.describe()}
    return family_names(body) | names


class _Idle:
    """A progress that never stalls, for serving /metrics only."""

    def seconds_since(self) -> float:
        """Return no idle time."""
        return 0.0


def test_scrape_config_targets_the_compose_services(config):
    scrape = yaml.safe_load(prometheus_file("prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}

    [signup] = jobs["signup"]["static_configs"][0]["targets"]
    assert signup == "signup:8000"
    assert "0.0.0.0:8000" in config["services"]["signup"]["command"]
    [mailers] = jobs["mailer"]["dns_sd_configs"]
    mailer_env = service_env(config, "mailer")
    assert mailers["names"] == ["mailer"]
    assert str(mailers["port"]) == mailer_env["MAILER_METRICS_PORT"]
    assert mailer_env["MAILER_METRICS_HOST"] == "0.0.0.0"
    assert mailer_env["MAILER_METRICS_PORT"] in config["services"]["mailer"]["expose"]


def test_compose_monitoring_profile_runs_a_pinned_prometheus(config):
    services = config["services"]
    prometheus = services["prometheus"]

    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prometheus["image"])
    assert prometheus["profiles"] == ["monitoring"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # The default `docker compose up` is unchanged; both extras bind loopback only.
    assert services["status"]["profiles"] == ["monitoring"]
    for name in ("prometheus", "status"):
        assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"]), name
    assert services["status"]["command"][:2] == ["outbox", "serve"]


def test_operations_doc_lists_every_exported_metric(tmp_path):
    """docs/operations.md's table names each family the services export."""
    exported = mailer_families() | signup_families(tmp_path)
    # prometheus-client's own families, and the *_created gauges it adds.
    ours = {
        n
        for n in exported
        if not n.startswith(("process_", "python_")) and not n.endswith("_created")
    }
    table = (ROOT / "docs" / "operations.md").read_text()

    documented = set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))

    assert documented == ours
