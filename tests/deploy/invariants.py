"""What every rendering of netweave's deployment must hold, whichever tool rendered it.

Each check takes the rendered objects and raises AssertionError naming what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from tests.deploy.kube import Manifest

from netweave.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
#: the rules of the ClusterRole every rendering must carry
RBAC_RULES: list[dict[str, Any]] = yaml.safe_load(
    (ROOT / "deploy" / "rbac" / "clusterrole.yaml").read_text()
)["rules"]
#: netweave's settings, as NETWEAVE_* variable names
SETTINGS = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
#: settings whose value is a secret: never a literal in a manifest
SECRET_SETTINGS = {
    "NETWEAVE_PAGING_SECRET",
    "NETWEAVE_NOTIFICATION_SECRET",
    "NETWEAVE_REDIS_URL",
}
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def one(objects: list[Manifest], kind: str) -> Manifest:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(objects: list[Manifest]) -> dict[str, str]:
    """kind -> apiVersion (each kind once, but for ConfigMaps)."""
    return {obj["kind"]: obj["apiVersion"] for obj in objects}


def container(objects: list[Manifest]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (gateway,) = [c for c in pod["containers"] if c["name"] == "netweave"]
    result: dict[str, Any] = gateway
    return result


def check_no_plain_secrets(objects: list[Manifest]) -> None:
    """No Secret object; secret settings only from secretKeyRef or files, and a Redis URL
    written out carries its password only as a $(VARIABLE) from a secretKeyRef."""
    assert "Secret" not in kinds(objects), "the manifests must not carry Secrets"
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            leaked = SECRET_SETTINGS & set(obj.get("data", {}))
            assert not leaked, f"ConfigMap {obj['metadata']['name']} holds {leaked}"
    env = container(objects).get("env", [])
    from_secrets = {item["name"] for item in env if "secretKeyRef" in item.get("valueFrom", {})}
    for item in env:
        if item["name"] in SECRET_SETTINGS and "value" in item:
            assert item["name"] == "NETWEAVE_REDIS_URL", f"{item['name']} is a literal"
            userinfo = re.match(r"^[a-z+]+://(?:([^/@]*)@)?", item["value"])
            assert userinfo is not None, f"not a URL: {item['name']}"
            credentials = userinfo.group(1) or ""
            stripped = _REFERENCE.sub("", credentials).strip(":")
            assert not stripped, "the Redis URL carries a literal credential"
            for name in _REFERENCE.findall(item["value"]):
                assert name in from_secrets, f"$({name}) does not come from a Secret"


def check_settings_known(objects: list[Manifest]) -> None:
    """Every NETWEAVE_* variable is a setting: the gateway refuses to start on any other."""
    names = {item["name"] for item in container(objects).get("env", [])}
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("netweave-config"):
            names |= set(obj.get("data", {}))
    unknown = {name for name in names if name.startswith(ENV_PREFIX)} - SETTINGS
    assert not unknown, f"not settings of netweave: {sorted(unknown)}"


def check_references_resolve(objects: list[Manifest]) -> None:
    """$(VAR) in an env value names a variable defined before it (Kubernetes expands only
    those, and leaves the text as it is otherwise)."""
    defined: set[str] = set()
    for item in container(objects).get("env", []):
        for name in _REFERENCE.findall(item.get("value", "")):
            assert name in defined, f"{item['name']} refers to $({name}) before it is defined"
        defined.add(item["name"])


def check_pod_security(objects: list[Manifest]) -> None:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False, "service links inject unknown NETWEAVE_* variables"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    context = container(objects)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def check_probes(objects: list[Manifest], *, scheme: str) -> None:
    gateway = container(objects)
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert probe in gateway, f"no {probe}"
        get = gateway[probe]["httpGet"]
        assert (get["path"], get["scheme"], get["port"]) == (path, scheme, "api"), probe


def check_volumes(objects: list[Manifest]) -> None:
    """Every mount has its volume and every volume is mounted; no subPath (rotated files
    would never reach the pod)."""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    volumes = {volume["name"] for volume in pod.get("volumes", [])}
    mounts = container(objects).get("volumeMounts", [])
    assert {mount["name"] for mount in mounts} == volumes
    assert not [mount for mount in mounts if "subPath" in mount]


def check_rbac(objects: list[Manifest]) -> None:
    """The ClusterRole is deploy/rbac/clusterrole.yaml's and is bound to the pods' account."""
    assert one(objects, "ClusterRole")["rules"] == RBAC_RULES
    binding = one(objects, "ClusterRoleBinding")
    account = one(objects, "ServiceAccount")["metadata"]
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]


def check_selectors(objects: list[Manifest]) -> None:
    """The Service, the budget and the autoscaler reach the Deployment's pods."""
    deployment = one(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert one(objects, "Service")["spec"]["selector"] == selector
    assert one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    for obj in objects:
        if obj["kind"] == "HorizontalPodAutoscaler":
            assert obj["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def check_all(objects: list[Manifest], *, scheme: str) -> None:
    check_no_plain_secrets(objects)
    check_settings_known(objects)
    check_references_resolve(objects)
    check_pod_security(objects)
    check_probes(objects, scheme=scheme)
    check_volumes(objects)
    check_rbac(objects)
    check_selectors(objects)
