"""The kustomize base and overlays (deploy/kustomize), rendered with ``kubectl kustomize``.

Each renders; the test API server (Kubernetes 1.20) accepts every object in a server-side
dry run with nothing dropped; the invariants of tests/deploy/invariants.py hold; the base
is the Helm chart with its default values, object for object; and each overlay is what it
says (dev: one open replica on the simulated backend; production: mTLS with cert-manager,
Redis Sentinel, 3+ replicas under an autoscaler).

The base's PodDisruptionBudget is policy/v1 and production's autoscaler autoscaling/v2, what
every supported Kubernetes (1.23+) serves; static manifests cannot switch like the chart.
The 1.20 test server serves the same objects only as policy/v1beta1 and
autoscaling/v2beta2, whose fields for these specs are the same, so the test posts those two
kinds there under the older version, and only when the server lacks the newer one.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.deploy import invariants
from tests.deploy.conftest import NAMESPACE, Cluster
from tests.deploy.kube import Manifest, accepted
from tests.deploy.rendering import KUSTOMIZE, kustomize, render_chart_offline

OVERLAYS = {
    "base": KUSTOMIZE / "base",
    "dev": KUSTOMIZE / "overlays" / "dev",
    "staging": KUSTOMIZE / "overlays" / "staging",
    "production": KUSTOMIZE / "overlays" / "production",
}
#: what a server older than the manifests serves the same objects as
OLDER_VERSIONS = {
    ("policy/v1", "PodDisruptionBudget"): "policy/v1beta1",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "autoscaling/v2beta2",
}
_HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def for_server(cluster: Cluster, objects: list[Manifest]) -> list[Manifest]:
    """The objects, with PDB and HPA moved to the older version the server serves (only
    when it does not serve theirs)."""
    result = []
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in OLDER_VERSIONS and not cluster.catalog.serves(*key):
            obj = {**obj, "apiVersion": OLDER_VERSIONS[key]}
        result.append(obj)
    return result


def config(objects: list[Manifest]) -> dict[str, str]:
    (found,) = [
        obj
        for obj in objects
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("netweave-config")
    ]
    data: dict[str, str] = found["data"]
    return data


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_applies_on_kubernetes_1_20(cluster: Cluster, overlay: str) -> None:
    objects = kustomize(OVERLAYS[overlay])
    assert {obj["metadata"].get("namespace", NAMESPACE) for obj in objects} == {NAMESPACE}
    accepted(cluster.http, cluster.catalog, for_server(cluster, objects), NAMESPACE)


@pytest.mark.parametrize("overlay", ["base", "staging", "production"])
def test_secure_overlays_keep_the_invariants(overlay: str) -> None:
    objects = kustomize(OVERLAYS[overlay])
    invariants.check_all(objects, scheme="HTTPS")
    assert "NETWEAVE_INSECURE" not in config(objects)
    env = {item["name"] for item in invariants.container(objects)["env"]}
    assert {"NETWEAVE_TLS_CLIENT_CA_FILE", "NETWEAVE_REDIS_URL"} <= env


def test_base_is_the_chart_with_its_default_values() -> None:
    base = kustomize(OVERLAYS["base"])
    chart = render_chart_offline(None, NAMESPACE)

    def index(objects: list[Manifest]) -> dict[tuple[str, str, str], Manifest]:
        named = {}
        for obj in objects:
            name = _HASH_SUFFIX.sub("", obj["metadata"]["name"])
            named[(obj["apiVersion"], obj["kind"], name)] = obj
        return named

    base_objects, chart_objects = index(base), index(chart)
    assert base_objects.keys() == chart_objects.keys()
    for key, ours in base_objects.items():
        theirs = chart_objects[key]
        assert ours["metadata"].get("namespace") == theirs["metadata"].get("namespace"), key
        for field in ("spec", "data", "rules", "roleRef", "subjects"):
            assert comparable(ours, field) == comparable(theirs, field), (key, field)


def comparable(obj: Manifest, field: str) -> Any:
    """One field of an object, as both tools must agree on it: the chart's pod template
    carries Helm's labels and checksum annotations (the pods' spec is what matters), and
    kustomize suffixes generated ConfigMaps' names with a hash of their content."""
    value = obj.get(field)
    if obj["kind"] == "Deployment" and field == "spec":
        spec = obj["spec"]
        value = {**spec, "template": {"spec": spec["template"]["spec"]}}
    return unhashed(value)


def unhashed(value: Any) -> Any:
    if isinstance(value, dict):
        result = {key: unhashed(item) for key, item in value.items()}
        for reference in ("configMapRef", "configMap"):
            if reference in result:
                result[reference]["name"] = _HASH_SUFFIX.sub("", result[reference]["name"])
        return result
    if isinstance(value, list):
        return [unhashed(item) for item in value]
    return value


def test_dev_is_one_open_replica_of_the_simulated_o_cloud() -> None:
    objects = kustomize(OVERLAYS["dev"])
    settings = config(objects)
    assert settings["NETWEAVE_BACKEND"] == "simulated"
    assert settings["NETWEAVE_INSECURE"] == "true"
    deployment = invariants.one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert [volume["name"] for volume in pod["volumes"]] == ["tmp"], "no TLS, no secrets"
    env = {item["name"] for item in invariants.container(objects)["env"]}
    assert not {name for name in env if "TLS" in name or "REDIS" in name or "PAGING" in name}
    invariants.check_probes(objects, scheme="HTTP")
    invariants.check_pod_security(objects)
    invariants.check_settings_known(objects)
    invariants.check_volumes(objects)
    ports = invariants.one(objects, "Service")["spec"]["ports"]
    assert [port["appProtocol"] for port in ports] == ["http"]


def test_staging_runs_two_replicas() -> None:
    objects = kustomize(OVERLAYS["staging"])
    assert invariants.one(objects, "Deployment")["spec"]["replicas"] == 2
    image = invariants.container(objects)["image"]
    assert image == "registry.example.net/o2/netweave:0.1.0"


def test_production_is_mtls_sentinel_and_autoscaled() -> None:
    objects = kustomize(OVERLAYS["production"])
    found = invariants.kinds(objects)
    assert found["HorizontalPodAutoscaler"] == "autoscaling/v2"
    assert found["PodDisruptionBudget"] == "policy/v1"
    assert {"Certificate", "ServiceMonitor"} <= found.keys()
    deployment = invariants.one(objects, "Deployment")
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    autoscaler = invariants.one(objects, "HorizontalPodAutoscaler")["spec"]
    assert autoscaler["minReplicas"] >= 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["affinity"]["podAntiAffinity"].keys() == {
        "requiredDuringSchedulingIgnoredDuringExecution"
    }
    env = {item["name"]: item for item in invariants.container(objects)["env"]}
    assert env["NETWEAVE_REDIS_URL"]["value"].startswith("redis+sentinel://:$(REDIS_PASSWORD)@")
    assert "valueFrom" not in env["NETWEAVE_REDIS_URL"]
    assert env["NETWEAVE_TLS_CLIENT_CERT_MODE"]["value"] == "optional"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    certificate = invariants.one(objects, "Certificate")["spec"]
    assert volumes["tls"]["secret"]["secretName"] == certificate["secretName"]
    assert volumes["client-ca"]["secret"]["secretName"] == "smo-client-ca"
    tenancy = [
        obj
        for obj in objects
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("netweave-tenancy")
    ]
    assert volumes["tenancy"]["configMap"]["name"] == tenancy[0]["metadata"]["name"]
