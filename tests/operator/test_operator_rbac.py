"""The shipped RBAC (deploy/operator/rbac.yaml) is what the operator needs, and it grants
the gateway exactly deploy/rbac/clusterrole.yaml's rules without ``escalate`` or ``bind``.

The operator runs here as its own service account, with a token from the TokenRequest API,
exactly as in a pod: Kubernetes' RBAC escalation check lets it create and bind the
gateway's ClusterRole only because it holds every permission in it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.conftest import OWNED_LABEL
from tests.kubeapi import KubeAPIServer
from tests.operator.kube import (
    RBAC,
    ROOT,
    conditions,
    create_gateway,
    gateway_path,
    get,
    manifests,
    patch_spec,
    reconciled,
    running_operator,
    wait_for,
    wait_gone,
)

from netweave.operator.rules import GATEWAY_RULES

ACCOUNT = "netweave-operator"


def _rules(role: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _shipped(kind: str, name: str) -> dict[str, Any]:
    return next(
        doc
        for doc in manifests("rbac.yaml")
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    )


def test_the_operator_grants_the_gateway_exactly_deploy_rbacs_rules() -> None:
    shipped = yaml.safe_load((ROOT / "deploy" / "rbac" / "clusterrole.yaml").read_text())
    assert GATEWAY_RULES == _rules(shipped)
    assert _rules(_shipped("ClusterRole", "netweave-operator-gateway")) == GATEWAY_RULES
    own = _rules(_shipped("ClusterRole", ACCOUNT))
    for rule in own:
        assert not {"escalate", "bind", "impersonate", "*"} & set(rule["verbs"]), rule
        assert "secrets" not in rule["resources"], "the operator never reads Secrets"


def _create(http: httpx.Client, doc: dict[str, Any]) -> None:
    doc = {**doc, "metadata": {**doc["metadata"]}}
    if doc["kind"] == "Namespace":
        path = "/api/v1/namespaces"
    elif doc["kind"] == "ServiceAccount":
        path = f"/api/v1/namespaces/{doc['metadata']['namespace']}/serviceaccounts"
    else:  # cluster-scoped RBAC: labelled so that kube_clean removes it
        doc["metadata"]["labels"] = {**doc["metadata"].get("labels", {}), OWNED_LABEL: "true"}
        path = f"{RBAC}/{doc['kind'].lower()}s"
    response = http.post(path, json=doc)
    assert response.status_code in (201, 409), response.text


def _kubeconfig(server: KubeAPIServer, token: str, directory: Path) -> Path:
    ca = base64.b64encode(server.ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server.url, "certificate-authority-data": ca}}
        ],
        "users": [{"name": ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "test", "user": ACCOUNT}}],
        "current-context": "operator",
    }
    path = directory / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def account_kubeconfig(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client, tmp_path: Path, gateway_crd: None
) -> Path:
    """The shipped RBAC less the gateway's grantable role binding (a test adds it), and a
    kubeconfig of the operator's service account."""
    for doc in manifests("rbac.yaml"):
        if (doc["kind"], doc["metadata"]["name"]) != (
            "ClusterRoleBinding",
            "netweave-operator-gateway",
        ):
            _create(kube_admin, doc)
    requested = kube_admin.post(
        f"/api/v1/namespaces/{ACCOUNT}/serviceaccounts/{ACCOUNT}/token",
        json={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    assert requested.status_code == 201, requested.text
    return _kubeconfig(kube_clean, requested.json()["status"]["token"], tmp_path)


def test_the_operator_runs_as_its_service_account_with_the_shipped_rbac(
    kube_admin: httpx.Client, account_kubeconfig: Path, namespace: str
) -> None:
    path = gateway_path(namespace, "netweave")
    role_name = f"{namespace}:netweave"
    with running_operator(account_kubeconfig, retry_delay=0.5):
        create_gateway(kube_admin, namespace, "netweave", {"replicas": 3})

        # without the gateway's permissions, RBAC refuses to let it grant them
        body = wait_for(
            kube_admin, path, lambda b: conditions(b).get("Degraded", {}).get("status") == "True"
        )
        degraded = conditions(body)["Degraded"]
        assert degraded["reason"] == "ApplyFailed"
        assert degraded["message"].startswith(f"ClusterRole {role_name}: 403 Forbidden")
        assert "attempting to grant RBAC permissions not currently held" in degraded["message"]
        assert get(kube_admin, f"{RBAC}/clusterroles/{role_name}") is None

        _create(kube_admin, _shipped("ClusterRoleBinding", "netweave-operator-gateway"))
        patch_spec(kube_admin, namespace, "netweave", {"replicas": 4})
        wait_for(kube_admin, path, reconciled(2))
        assert get(kube_admin, f"{RBAC}/clusterroles/{role_name}") is not None
        assert get(kube_admin, f"{RBAC}/clusterrolebindings/{role_name}") is not None
        deployment = get(kube_admin, f"/apis/apps/v1/namespaces/{namespace}/deployments/netweave")
        assert deployment is not None and deployment["spec"]["replicas"] == 4

        assert kube_admin.delete(path).status_code == 200
        wait_gone(kube_admin, path)
        assert get(kube_admin, f"{RBAC}/clusterroles/{role_name}") is None
        assert get(kube_admin, f"{RBAC}/clusterrolebindings/{role_name}") is None
