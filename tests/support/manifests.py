"""Read deploy/kubernetes the way kubectl would, for the offline deploy tests.

No cluster runs the tests, so these helpers do the small part of its work the
tests need: list what the kustomization applies, find objects by kind and
name, and give each container the environment the kubelet would build from
its ConfigMaps, Secret references and literal values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = KUBERNETES_DIR / "kustomization.yaml"
WORKLOAD_KINDS = frozenset({"Deployment", "Job", "StatefulSet", "DaemonSet"})


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Return the YAML documents of ``path``, empty ones dropped."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    """Return every manifest beside the kustomization, examples included."""
    return sorted(p for p in KUBERNETES_DIR.glob("*.yaml") if p != KUSTOMIZATION)


def applied_files() -> list[Path]:
    """Return the files ``kubectl apply -k`` applies, in the kustomization's order."""
    resources = load_documents(KUSTOMIZATION)[0]["resources"]
    return [KUBERNETES_DIR / name for name in resources]


def applied_objects() -> list[dict[str, Any]]:
    """Return every object the kustomization applies."""
    return [doc for path in applied_files() for doc in load_documents(path)]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """Return the one object of ``kind`` called ``name``."""
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind and obj["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the objects that run pods."""
    return [obj for obj in objects if obj["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the pod spec of a Deployment, Job or other workload."""
    return workload["spec"]["template"]["spec"]


def only_container(workload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the single container of ``workload``'s pods."""
    (container,) = pod_spec(workload)["containers"]
    return container


def containers(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every container and init container of every workload."""
    for workload in workloads(objects):
        spec = pod_spec(workload)
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


def secret_refs(container: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the container's ``secretKeyRef`` references."""
    return [
        item["valueFrom"]["secretKeyRef"]
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    ]


def container_env(
    objects: list[dict[str, Any]],
    container: Mapping[str, Any],
    secrets: Mapping[str, str],
) -> dict[str, str]:
    """Return the environment the kubelet gives ``container``.

    ConfigMaps named by ``envFrom`` come first and ``env`` entries override
    them, as in Kubernetes. ``secrets`` stands in for the Secret's data: a
    reference to a key it lacks is skipped if optional, and fails otherwise,
    as the pod would not start.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unexpected envFrom {source}"
        env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            env[item["name"]] = item["value"]
        elif ref["key"] in secrets:
            env[item["name"]] = secrets[ref["key"]]
        else:
            assert ref.get("optional"), f"{item['name']}: missing key {ref['key']}"
    return env


def container_env_names(
    objects: list[dict[str, Any]], container: Mapping[str, Any]
) -> set[str]:
    """Return every variable name ``container`` gets, whatever the Secret holds."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        names.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    return names
