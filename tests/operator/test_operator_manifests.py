"""The shipped operator manifests: accepted by the API server as they are (a server-side
dry run keeping every field: 1.20 prunes unknown ones silently), and consistent with each
other and with the command they run."""

from __future__ import annotations

import httpx
import pytest
from tests.deploy.kube import Catalog, accepted
from tests.operator.kube import manifests

NAMESPACE = "netweave-operator"


@pytest.mark.parametrize("name", ["rbac.yaml", "deployment.yaml", "example.yaml"])
def test_the_shipped_manifests_are_accepted_as_they_are(
    kube_admin: httpx.Client, gateway_crd: None, name: str
) -> None:
    for namespace in (NAMESPACE, "netweave"):  # a dry run needs the namespace to exist
        created = kube_admin.post(
            "/api/v1/namespaces",
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
        assert created.status_code in (201, 409), created.text
    objects = [doc for doc in manifests(name) if doc["kind"] != "Namespace"]
    accepted(kube_admin, Catalog(kube_admin), objects, "netweave")


def test_the_operator_deployment_runs_one_operator_as_its_service_account() -> None:
    (deployment,) = manifests("deployment.yaml")
    account = next(doc for doc in manifests("rbac.yaml") if doc["kind"] == "ServiceAccount")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # never two at once: kopf runs standalone
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert deployment["metadata"]["namespace"] == account["metadata"]["namespace"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[0] == "operator"
    liveness = args[args.index("--liveness") + 1]
    probe = container["livenessProbe"]["httpGet"]
    (port,) = (p["containerPort"] for p in container["ports"] if p["name"] == probe["port"])
    assert liveness == f"http://0.0.0.0:{port}{probe['path']}"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
