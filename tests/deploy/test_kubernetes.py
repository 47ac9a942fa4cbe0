"""deploy/kubernetes is valid, locked down, and agrees with compose.yaml and the code.

No cluster runs here: every manifest is checked against the Kubernetes
schemas offline (kubernetes-validate, strict), its settings go through the
services' own config parsers, and test_kubernetes_pods.py runs each
container's command for real with a read-only root filesystem.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailer_service.config import (
    LEASE_TIMEOUT_RATIO,
    load_mailer_settings,
    mailer_settings,
)
from signup_service.config import signup_settings
from tests.support import VENV_BIN
from tests.support.deployfiles import (
    DOCKERFILE,
    dockerfile_instructions,
    parse_duration,
    service_env,
    unknown_env_names,
)
from tests.support.manifests import (
    KUBERNETES_DIR,
    KUSTOMIZATION,
    applied_files,
    applied_objects,
    container_env,
    container_env_names,
    containers,
    find,
    load_documents,
    manifest_files,
    only_container,
    pod_spec,
    secret_refs,
    workloads,
)

# The oldest and the newest Kubernetes whose schemas kubernetes-validate ships
# that the manifests claim to fit.
KUBERNETES_VERSIONS = ("1.25", "1.37")
# What each workload runs, by compose.yaml's service name.
WORKLOAD_SERVICES = {
    ("Job", "outbox-migrate"): "migrate",
    ("Deployment", "outbox-signup"): "signup",
    ("Deployment", "outbox-mailer"): "mailer",
}
SECRET_NAME = "outbox-secrets"
# Stand-ins for the Secret's values; MAIL_PASSWORD is absent, as without a login.
PLACEHOLDER_SECRETS = {
    "DATABASE_URL": "postgresql://outbox:placeholder@postgres:5432/outbox",
    "SECRET_KEY": "placeholder-secret-key-placeholder-secret-key",
}


def kubernetes_validate(
    paths: list[Path], version: str
) -> subprocess.CompletedProcess[str]:
    """Check ``paths`` against the bundled schemas of Kubernetes ``version``."""
    return subprocess.run(
        [
            str(VENV_BIN / "kubernetes-validate"),
            "--strict",
            "--quiet",
            "--kubernetes-version",
            version,
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def dockerfile_uid() -> int:
    """Return the uid of the user the Dockerfile creates with useradd --uid."""
    for keyword, arguments in dockerfile_instructions(DOCKERFILE.read_text()):
        words = shlex.split(arguments)
        if keyword == "RUN" and "useradd" in words and "--uid" in words:
            return int(words[words.index("--uid") + 1])
    raise AssertionError("the Dockerfile creates no user with --uid")


@pytest.fixture
def objects() -> list[dict[str, Any]]:
    """Every object `kubectl apply -k deploy/kubernetes` applies."""
    return applied_objects()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_match_the_schemas(version):
    result = kubernetes_validate(manifest_files(), version)

    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_rejects_a_misspelt_field(tmp_path):
    """The schema check can fail: strict mode refuses an unknown probe field."""
    broken = tmp_path / "signup.yaml"
    text = (KUBERNETES_DIR / "signup.yaml").read_text()
    assert "readinessProbe:" in text
    broken.write_text(text.replace("readinessProbe:", "readynessProbe:"))

    result = kubernetes_validate([broken], KUBERNETES_VERSIONS[-1])

    assert result.returncode != 0
    assert "readynessProbe" in result.stdout + result.stderr


def test_kustomization_applies_every_manifest_but_the_examples():
    kustomization = load_documents(KUSTOMIZATION)[0]
    examples = {p for p in manifest_files() if p.name.endswith(".example.yaml")}

    assert kustomization["kind"] == "Kustomization"
    assert set(applied_files()) == set(manifest_files()) - examples
    assert examples == {
        KUBERNETES_DIR / "secret.example.yaml",
        KUBERNETES_DIR / "mailer-hpa.example.yaml",
    }
    # One image for every container, the one compose.yaml builds.
    assert [image["name"] for image in kustomization["images"]] == [
        "flask-email-outbox"
    ]


def test_kubernetes_has_the_planned_objects(objects):
    kinds = sorted((obj["kind"], obj["metadata"]["name"]) for obj in objects)

    assert kinds == [
        ("ConfigMap", "outbox-app"),
        ("ConfigMap", "outbox-mailer"),
        ("ConfigMap", "outbox-signup"),
        ("Deployment", "outbox-mailer"),
        ("Deployment", "outbox-signup"),
        ("HorizontalPodAutoscaler", "outbox-signup"),
        ("Job", "outbox-migrate"),
        ("PodDisruptionBudget", "outbox-signup"),
        ("Service", "outbox-signup"),
    ]


def test_kubernetes_commands_are_composes_commands(objects, config):
    for (kind, name), service in WORKLOAD_SERVICES.items():
        container = only_container(find(objects, kind, name))
        assert container["command"] == config["services"][service]["command"], name
        assert "args" not in container, name  # nothing appended to compose's line


def test_kubernetes_images_are_composes_image(objects, config):
    compose_image = config["services"]["signup"]["image"]

    for container in containers(objects):
        assert container["image"] == compose_image, container["name"]


def test_kubernetes_env_names_are_read_by_the_code(objects):
    """Every variable a pod gets is one the code (or a library it uses) reads.

    Checked against the code on this branch, like the compose test: a name
    that another branch is adding shows up here until that branch is merged.
    """
    unknown = {
        container["name"]: unknown_env_names(container_env_names(objects, container))
        for container in containers(objects)
    }

    assert {name: names for name, names in unknown.items() if names} == {}


def test_kubernetes_pod_env_is_a_valid_configuration(objects):
    """With the Secret filled in, each pod's env passes its service's checks."""
    signup = find(objects, "Deployment", "outbox-signup")
    mailer = find(objects, "Deployment", "outbox-mailer")
    migrate = find(objects, "Job", "outbox-migrate")

    signup_settings(container_env(objects, only_container(signup), PLACEHOLDER_SECRETS))
    mailer_env = container_env(objects, only_container(mailer), PLACEHOLDER_SECRETS)
    load_mailer_settings(mailer_env)
    assert mailer_settings(mailer_env)["MAIL_USE_TLS"] is True
    migrate_env = container_env(objects, only_container(migrate), PLACEHOLDER_SECRETS)
    assert migrate_env == {"DATABASE_URL": PLACEHOLDER_SECRETS["DATABASE_URL"]}


def test_kubernetes_mailer_grace_period_matches_compose(objects, config):
    """Both SIGKILLs come after the worst-case send, from one MAIL_TIMEOUT."""
    mailer = find(objects, "Deployment", "outbox-mailer")
    mail_timeout = float(
        find(objects, "ConfigMap", "outbox-mailer")["data"]["MAIL_TIMEOUT"]
    )
    compose_env = service_env(config, "mailer")
    grace = pod_spec(mailer)["terminationGracePeriodSeconds"]
    compose_grace = parse_duration(config["services"]["mailer"]["stop_grace_period"])

    assert mail_timeout == float(compose_env["MAIL_TIMEOUT"])
    settings = load_mailer_settings({"MAIL_TIMEOUT": str(mail_timeout)})
    assert settings.mail_timeout == mail_timeout
    assert grace == compose_grace
    assert grace > LEASE_TIMEOUT_RATIO * mail_timeout
    assert grace > 30  # Kubernetes' default, which would cut a send short


def test_kubernetes_pods_run_unprivileged(objects):
    """Non-root as the image's user, read-only root, no escalation, no capabilities."""
    uid = dockerfile_uid()
    for workload in workloads(objects):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == uid, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name


def test_kubernetes_writable_paths_are_emptydirs(objects):
    """/tmp everywhere, and the signup's Prometheus directory, and nothing else."""
    mounts = {}
    for workload in workloads(objects):
        spec = pod_spec(workload)
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert all("emptyDir" in volume for volume in volumes.values())
        (container,) = spec["containers"]
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        paths = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert {mount["name"] for mount in container["volumeMounts"]} == set(volumes)
        mounts[workload["metadata"]["name"]] = (paths, env)

    signup_paths, signup_env = mounts.pop("outbox-signup")
    assert signup_paths == {"/tmp", signup_env["PROMETHEUS_MULTIPROC_DIR"]}
    for paths, _env in mounts.values():
        assert paths == {"/tmp"}


def readme_pgbouncer_patch() -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Return the target and JSON patch of the README's "Behind PgBouncer"."""
    text = (KUBERNETES_DIR / "README.md").read_text()
    section = text.split("### Behind PgBouncer", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no yaml block in the section"
    (patch,) = yaml.safe_load(textwrap.dedent(block[1]))["patches"]
    return patch["target"], yaml.safe_load(patch["patch"])


def test_kubernetes_pgbouncer_patch_keeps_the_migration_direct(objects):
    """Behind PgBouncer the README's patch sends the Job, and only it, direct.

    The mailer's listener takes the direct URL from its own optional key.
    """
    secrets = {
        **PLACEHOLDER_SECRETS,
        "DATABASE_URL": "postgresql://outbox:placeholder@pgbouncer:6432/outbox",
        "MAILER_LISTEN_URL": PLACEHOLDER_SECRETS["DATABASE_URL"],
    }
    target, operations = readme_pgbouncer_patch()
    job = find(objects, target["kind"], target["name"])
    for operation in operations:
        assert operation["op"] == "replace"
        *parents, last = operation["path"].strip("/").split("/")
        node: Any = job
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert last in node  # kustomize replaces only what is there
        node[last] = operation["value"]

    assert container_env(objects, only_container(job), secrets) == {
        "DATABASE_URL": secrets["MAILER_LISTEN_URL"]
    }
    mailer = find(objects, "Deployment", "outbox-mailer")
    mailer_env = container_env(objects, only_container(mailer), secrets)
    assert mailer_env["DATABASE_URL"] == secrets["DATABASE_URL"]
    assert mailer_env["MAILER_LISTEN_URL"] == secrets["MAILER_LISTEN_URL"]


def test_kubernetes_secrets_are_referenced_never_committed(objects):
    example = load_documents(KUBERNETES_DIR / "secret.example.yaml")
    (secret,) = example
    referenced = {
        ref["key"]
        for container in containers(objects)
        for ref in secret_refs(container)
    }

    assert not [obj for obj in objects if obj["kind"] == "Secret"]
    assert secret["metadata"]["name"] == SECRET_NAME
    assert set(secret["stringData"].values()) == {""}  # keys only, no values
    assert "data" not in secret
    assert (
        referenced
        == set(secret["stringData"])
        == {
            "DATABASE_URL",
            "MAILER_LISTEN_URL",
            "MAIL_PASSWORD",
            "SECRET_KEY",
        }
    )
    for container in containers(objects):
        assert {ref["name"] for ref in secret_refs(container)} <= {SECRET_NAME}
    # The signup pods never get the SMTP password; only the mailers send.
    signup = only_container(find(objects, "Deployment", "outbox-signup"))
    assert "MAIL_PASSWORD" not in container_env_names(objects, signup)


def test_kubernetes_signup_probes_and_port(objects, config):
    """Ready on /readyz, alive on /healthz, both on the port gunicorn binds."""
    container = only_container(find(objects, "Deployment", "outbox-signup"))
    command = config["services"]["signup"]["command"]
    bind_port = int(command[command.index("--bind") + 1].rpartition(":")[2])
    (port,) = container["ports"]

    assert port["containerPort"] == bind_port
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert port["name"] == "http"


def test_kubernetes_mailer_liveness_is_on_the_metrics_port(objects):
    container = only_container(find(objects, "Deployment", "outbox-mailer"))
    settings = find(objects, "ConfigMap", "outbox-mailer")["data"]
    (port,) = container["ports"]

    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "metrics",
    }
    assert port == {
        "name": "metrics",
        "containerPort": int(settings["MAILER_METRICS_PORT"]),
    }
    assert "readinessProbe" not in container  # no Service sends it traffic


def test_kubernetes_every_container_has_requests_and_limits(objects):
    for container in containers(objects):
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert set(resources[bound]) == {"cpu", "memory"}, container["name"]


def test_kubernetes_signup_service_budget_and_autoscaler_find_the_pods(objects):
    deployment = find(objects, "Deployment", "outbox-signup")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = find(objects, "Service", "outbox-signup")
    budget = find(objects, "PodDisruptionBudget", "outbox-signup")
    autoscaler = find(objects, "HorizontalPodAutoscaler", "outbox-signup")

    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "outbox-signup",
    }
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    # The budget can be met while the autoscaler keeps its minimum.
    assert autoscaler["spec"]["minReplicas"] > budget["spec"]["minAvailable"]
    # The autoscaler owns the count; a replicas field would reset it on apply.
    assert "replicas" not in deployment["spec"]


def test_kubernetes_mailer_autoscaler_example_targets_the_mailers():
    (autoscaler,) = load_documents(KUBERNETES_DIR / "mailer-hpa.example.yaml")
    text = (KUBERNETES_DIR / "mailer-hpa.example.yaml").read_text()
    (metric,) = autoscaler["spec"]["metrics"]

    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "outbox-mailer"
    assert metric["type"] == "External"
    name = metric["external"]["metric"]["name"]
    # The prometheus-adapter rule in the comments serves that very name.
    assert re.search(rf"as: {name}\b", text)
