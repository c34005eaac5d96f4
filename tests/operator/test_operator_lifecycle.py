"""The operator against the real kube-apiserver: create, scale, upgrade, status, invalid
specs, pruning and deletion of an ``O2IMSGateway``.

There is no controller-manager, scheduler or garbage collector on the test server:
Deployments never get pods, so the tests assert on the objects, write a Deployment's status
themselves where a rollout has to finish, and check owner references rather than cascading
deletion.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.deploy.crds import CERTIFICATE_CRD
from tests.kubeapi import delete_crd, install_crd
from tests.operator.kube import (
    OPERATOR_VERSION,
    RBAC,
    RunningOperator,
    conditions,
    create_gateway,
    gateway,
    gateway_path,
    get,
    patch_spec,
    reconciled,
    wait_for,
    wait_gone,
)

from netweave.operator.manifests import OWNER_UID_LABEL

SPEC: dict[str, Any] = {
    "replicas": 3,
    "version": "1.2.3",
    "image": {"repository": "registry.example.net/o2/netweave"},
    "backend": {"clusterName": "edge-1"},
    "tenancy": {
        "inline": {
            "tenants": [{"tenantId": "smo-a", "name": "SMO A"}],
            "users": [{"tenantId": "smo-a", "subject": "CN=smo-a"}],
        }
    },
    "config": {"ocloud_name": "edge-1-ocloud", "delivery_concurrency": 64},
}


def _paths(namespace: str) -> dict[str, str]:
    core, apps = f"/api/v1/namespaces/{namespace}", f"/apis/apps/v1/namespaces/{namespace}"
    return {
        "Deployment": f"{apps}/deployments/netweave",
        "Service": f"{core}/services/netweave",
        "ServiceAccount": f"{core}/serviceaccounts/netweave",
        "ConfigMap": f"{core}/configmaps/netweave-config",
        "Tenancy": f"{core}/configmaps/netweave-tenancy",
        # policy/v1 came with Kubernetes 1.21: the 1.20 test server serves v1beta1 only
        "PodDisruptionBudget": (
            f"/apis/policy/v1beta1/namespaces/{namespace}/poddisruptionbudgets/netweave"
        ),
    }


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_a_gateway_becomes_the_charts_objects_owned_by_it(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    created = create_gateway(kube_admin, namespace, "netweave", SPEC)
    uid = created["metadata"]["uid"]
    body = wait_for(kube_admin, gateway_path(namespace, "netweave"), reconciled(1))

    for kind, path in _paths(namespace).items():
        obj = get(kube_admin, path)
        assert obj is not None, f"no {kind}"
        (reference,) = obj["metadata"]["ownerReferences"]
        assert reference == {
            "apiVersion": "o2ims.oran.org/v1alpha1",
            "kind": "O2IMSGateway",
            "name": "netweave",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }, kind
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "netweave-operator"
        fields = {entry["manager"] for entry in obj["metadata"]["managedFields"]}
        assert "netweave-operator" in fields, f"{kind} not applied by netweave-operator"

    deployment = get(kube_admin, _paths(namespace)["Deployment"])
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 3
    container = _container(deployment)
    assert container["image"] == "registry.example.net/o2/netweave:1.2.3"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "netweave"
    env = {e["name"]: e for e in container["env"]}
    assert env["NETWEAVE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "netweave-redis",
        "key": "url",
    }
    assert env["NETWEAVE_TENANCY_FILE"]["value"] == "/etc/netweave/tenancy/tenancy.yaml"
    assert env["NETWEAVE_SERVICE_URI"]["value"] == f"https://netweave.{namespace}.svc:8080"
    config = get(kube_admin, _paths(namespace)["ConfigMap"])
    assert config is not None
    assert config["data"] == {
        "NETWEAVE_BACKEND": "kubernetes",
        "NETWEAVE_CLUSTER_NAME": "edge-1",
        "NETWEAVE_DELIVERY_CONCURRENCY": "64",
        "NETWEAVE_LOG_FORMAT": "json",
        "NETWEAVE_LOG_LEVEL": "info",
        "NETWEAVE_OCLOUD_NAME": "edge-1-ocloud",
    }

    # cluster-scoped: no owner reference (a namespaced owner cannot own them), a label
    name = f"{namespace}:netweave"
    role = get(kube_admin, f"{RBAC}/clusterroles/{name}")
    binding = get(kube_admin, f"{RBAC}/clusterrolebindings/{name}")
    assert role is not None and binding is not None
    for obj in (role, binding):
        assert "ownerReferences" not in obj["metadata"]
        assert obj["metadata"]["labels"][OWNER_UID_LABEL] == uid
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "netweave", "namespace": namespace}
    ]
    assert binding["roleRef"]["name"] == name

    status = body["status"]
    assert status["version"] == "1.2.3"
    assert status["image"] == "registry.example.net/o2/netweave:1.2.3"
    assert status["replicas"] == 3
    assert status["availableReplicas"] == 0
    found = conditions(body)
    assert found["Degraded"]["reason"] == "Reconciled"
    assert found["Ready"]["status"] == "False"
    assert found["Ready"]["reason"] == "ReplicasUnavailable"
    assert found["Progressing"]["status"] == "True"
    assert found["Progressing"]["reason"] == "RollingOut"


def test_scaling_and_upgrading_follow_the_spec(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    create_gateway(kube_admin, namespace, "netweave", SPEC)
    path = gateway_path(namespace, "netweave")
    wait_for(kube_admin, path, reconciled(1))
    deployment_path = _paths(namespace)["Deployment"]

    patch_spec(kube_admin, namespace, "netweave", {"replicas": 5})
    body = wait_for(kube_admin, path, reconciled(2))
    deployment = get(kube_admin, deployment_path)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 5
    assert _container(deployment)["image"].endswith(":1.2.3")
    assert body["status"]["replicas"] == 5

    patch_spec(kube_admin, namespace, "netweave", {"version": "1.3.0"})
    body = wait_for(kube_admin, path, reconciled(3))
    deployment = get(kube_admin, deployment_path)
    assert deployment is not None
    assert _container(deployment)["image"] == "registry.example.net/o2/netweave:1.3.0"
    assert deployment["spec"]["replicas"] == 5
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "1.3.0"
    assert body["status"]["version"] == "1.3.0"

    # no version: the operator's own
    patch_spec(kube_admin, namespace, "netweave", {"version": None})
    wait_for(kube_admin, path, reconciled(4))
    deployment = get(kube_admin, deployment_path)
    assert deployment is not None
    assert _container(deployment)["image"].endswith(f":{OPERATOR_VERSION}")


def test_ready_and_progressing_follow_the_deployments_rollout(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    create_gateway(kube_admin, namespace, "netweave", SPEC)
    path = gateway_path(namespace, "netweave")
    first = wait_for(kube_admin, path, reconciled(1))
    ready_since = conditions(first)["Ready"]["lastTransitionTime"]
    deployment_path = _paths(namespace)["Deployment"]
    deployment = get(kube_admin, deployment_path)
    assert deployment is not None

    def rollout(available: int) -> None:
        """What the deployment controller would write (there is none here)."""
        status = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": available,
            "availableReplicas": available,
        }
        written = kube_admin.patch(
            f"{deployment_path}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert written.status_code == 200, written.text

    rollout(2)
    body = wait_for(kube_admin, path, lambda b: b["status"].get("availableReplicas") == 2)
    assert conditions(body)["Ready"]["status"] == "False"
    assert conditions(body)["Ready"]["lastTransitionTime"] == ready_since  # still False
    assert conditions(body)["Progressing"]["message"] == "2 of 3 replicas available"

    rollout(3)
    body = wait_for(kube_admin, path, lambda b: conditions(b)["Ready"]["status"] == "True")
    assert conditions(body)["Ready"]["reason"] == "ReplicasAvailable"
    assert conditions(body)["Progressing"]["status"] == "False"
    assert conditions(body)["Progressing"]["reason"] == "RolloutComplete"
    assert conditions(body)["Degraded"]["status"] == "False"
    assert body["status"]["availableReplicas"] == 3


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"replicas": -1}, "spec.replicas"),
        ({"replicas": "three"}, "spec.replicas"),
        ({"version": "1.0 beta"}, "spec.version"),
        ({"mtls": {"clientCertMode": "sometimes"}}, "spec.mtls.clientCertMode"),
        ({"redis": {"mode": "cluster"}}, "spec.redis.mode"),
        ({"redis": {"sentinel": {"hosts": ["no-port"]}}}, "spec.redis.sentinel.hosts"),
        ({"image": {"digest": "md5:abc"}}, "spec.image.digest"),
        ({"tls": {"issuerRef": {"kind": "ClusterIssuer"}}}, "spec.tls.issuerRef.name"),
    ],
)
def test_the_crd_schema_refuses_malformed_specs(
    kube_admin: httpx.Client, namespace: str, spec: dict[str, Any], field: str
) -> None:
    refused = kube_admin.post(gateway_path(namespace), json=gateway("bad", spec))
    assert refused.status_code == 422, refused.text
    assert field in refused.json()["message"]


def test_a_spec_that_cannot_run_is_reported_degraded_and_leaves_the_last_good_one(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    path = gateway_path(namespace, "netweave")
    create_gateway(kube_admin, namespace, "netweave", {**SPEC, "redis": {"mode": "none"}})

    def degraded(generation: int) -> Any:
        def check(body: dict[str, Any]) -> bool:
            found = conditions(body).get("Degraded", {})
            return bool(
                found.get("status") == "True"
                and body["status"].get("observedGeneration") == generation
            )

        return check

    body = wait_for(kube_admin, path, degraded(1))
    found = conditions(body)
    assert found["Degraded"]["reason"] == "InvalidSpec"
    assert found["Degraded"]["message"].startswith("redis.mode: several replicas")
    assert found["Progressing"]["reason"] == "Blocked"
    assert found["Ready"]["reason"] == "NoDeployment"
    assert get(kube_admin, _paths(namespace)["Deployment"]) is None

    patch_spec(kube_admin, namespace, "netweave", {"redis": {"mode": "url"}})
    wait_for(kube_admin, path, reconciled(2))
    assert get(kube_admin, _paths(namespace)["Deployment"]) is not None

    # a bad change to a running gateway: reported, the running objects left alone
    patch_spec(
        kube_admin, namespace, "netweave", {"replicas": 4, "config": {"log_level": "verbose"}}
    )
    body = wait_for(kube_admin, path, degraded(3))
    assert conditions(body)["Degraded"]["message"].startswith("config.log_level: Input should be")
    deployment = get(kube_admin, _paths(namespace)["Deployment"])
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 3

    patch_spec(kube_admin, namespace, "netweave", {"config": {"log_level": "debug"}})
    wait_for(kube_admin, path, reconciled(4))
    deployment = get(kube_admin, _paths(namespace)["Deployment"])
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 4


def test_objects_a_new_spec_no_longer_makes_are_deleted(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    path = gateway_path(namespace, "netweave")
    create_gateway(kube_admin, namespace, "netweave", SPEC)
    wait_for(kube_admin, path, reconciled(1))
    tenancy = _paths(namespace)["Tenancy"]
    assert get(kube_admin, tenancy) is not None

    patch_spec(
        kube_admin, namespace, "netweave", {"tenancy": {"inline": None, "configMapName": "mine"}}
    )
    wait_for(kube_admin, path, reconciled(2))
    assert get(kube_admin, tenancy) is None
    deployment = get(kube_admin, _paths(namespace)["Deployment"])
    assert deployment is not None
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tenancy"]["configMap"]["name"] == "mine"

    # a ConfigMap of that name the operator does not own is never deleted
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "netweave-tenancy"}}
    made = kube_admin.post(f"/api/v1/namespaces/{namespace}/configmaps", json=foreign)
    assert made.status_code == 201, made.text
    patch_spec(kube_admin, namespace, "netweave", {"replicas": 2})
    wait_for(kube_admin, path, reconciled(3))
    assert get(kube_admin, tenancy) is not None


def test_deleting_a_gateway_deletes_its_cluster_objects_and_leaves_the_rest_to_the_gc(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    created = create_gateway(kube_admin, namespace, "netweave", SPEC)
    uid = created["metadata"]["uid"]
    path = gateway_path(namespace, "netweave")
    body = wait_for(kube_admin, path, reconciled(1))
    assert body["metadata"]["finalizers"] == ["o2ims.oran.org/operator"]
    name = f"{namespace}:netweave"

    assert kube_admin.delete(path).status_code == 200
    wait_gone(kube_admin, path)  # the operator's deletion handler ran and let it go
    assert get(kube_admin, f"{RBAC}/clusterroles/{name}") is None
    assert get(kube_admin, f"{RBAC}/clusterrolebindings/{name}") is None
    # the namespaced objects are owned by the deleted gateway: a cluster's garbage
    # collector deletes them (the test server has none)
    for kind, child in _paths(namespace).items():
        obj = get(kube_admin, child)
        assert obj is not None, kind
        assert [ref["uid"] for ref in obj["metadata"]["ownerReferences"]] == [uid]


def test_a_gateway_not_named_netweave_gets_the_charts_prefixed_names(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    create_gateway(kube_admin, namespace, "edge", {**SPEC, "replicas": 1})
    wait_for(kube_admin, gateway_path(namespace, "edge"), reconciled(1))
    deployment = get(kube_admin, f"/apis/apps/v1/namespaces/{namespace}/deployments/edge-netweave")
    assert deployment is not None
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "netweave", "app.kubernetes.io/instance": "edge"}
    assert get(kube_admin, f"{RBAC}/clusterroles/{namespace}:edge-netweave") is not None


def test_a_certificate_from_cert_manager_once_cert_manager_is_there(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    path = gateway_path(namespace, "netweave")
    spec = {**SPEC, "tls": {"issuerRef": {"name": "o2-ca"}, "dnsNames": ["o2ims.example.net"]}}
    create_gateway(kube_admin, namespace, "netweave", spec)
    body = wait_for(
        kube_admin, path, lambda b: conditions(b).get("Degraded", {}).get("status") == "True"
    )
    degraded = conditions(body)["Degraded"]
    assert degraded["reason"] == "ApplyFailed"
    assert degraded["message"].startswith("Certificate netweave: 404 NotServed")

    certificate = f"/apis/cert-manager.io/v1/namespaces/{namespace}/certificates/netweave"
    install_crd(kube_admin, CERTIFICATE_CRD)
    try:
        wait_for(kube_admin, path, reconciled(1))  # retried by itself
        found = get(kube_admin, certificate)
        assert found is not None
        assert found["spec"]["issuerRef"] == {
            "name": "o2-ca",
            "kind": "ClusterIssuer",
            "group": "cert-manager.io",
        }
        assert found["spec"]["secretName"] == "netweave-tls"
        assert found["spec"]["dnsNames"][:2] == ["o2ims.example.net", "netweave"]
        assert found["metadata"]["ownerReferences"][0]["kind"] == "O2IMSGateway"

        tls = {"issuerRef": None, "dnsNames": None, "secretName": "own"}
        patch_spec(kube_admin, namespace, "netweave", {"tls": tls})
        wait_for(kube_admin, path, reconciled(2))
        assert get(kube_admin, certificate) is None
        deployment = get(kube_admin, _paths(namespace)["Deployment"])
        assert deployment is not None
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "own"
    finally:
        delete_crd(kube_admin, CERTIFICATE_CRD["metadata"]["name"])


def test_hand_edits_of_the_objects_are_undone_by_the_resync(
    operator: RunningOperator, kube_admin: httpx.Client, namespace: str
) -> None:
    create_gateway(kube_admin, namespace, "netweave", SPEC)
    wait_for(kube_admin, gateway_path(namespace, "netweave"), reconciled(1))
    path = _paths(namespace)["Deployment"]
    scaled = kube_admin.patch(
        path,
        json={"spec": {"replicas": 1}, "metadata": {"annotations": {"by-hand": "kept"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert scaled.status_code == 200, scaled.text
    restored = wait_for(kube_admin, path, lambda d: d["spec"]["replicas"] == 3, timeout=10)
    # fields the operator does not set are not its to undo
    assert restored["metadata"]["annotations"] == {"by-hand": "kept"}
