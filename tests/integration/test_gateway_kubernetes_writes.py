"""The gateway API's writes end to end on Kubernetes: HTTP in, real kube-apiserver objects
changed, the inventory and the notifications following through the watch.

The cluster has netweave's ResourcePool CRD (no cluster-api): a pool created through the
gateway is a ResourcePool object and the nodes it labels.  Nothing reconciles in this API
server, so the test plays the kubelet where needed (pods bound and Running).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.integration.test_kubernetes_lifecycle import (
    NS,
    clean_lifecycle_objects,
    make_node,
    make_pod,
    ok,
)
from tests.kubeapi import KubeAPIServer, install_crd, resourcepool_crd
from tests.servers import serve_gateway
from tests.waiting import eventually
from tests.webhooks import Receiver, running_receiver

pytestmark = pytest.mark.timeout(300)

V1 = "/o2ims/v1"
POOLS = f"{V1}/resourcePools"


@pytest.fixture
def kube(kube_admin: httpx.Client) -> Iterator[httpx.Client]:
    clean_lifecycle_objects(kube_admin)
    yield kube_admin
    clean_lifecycle_objects(kube_admin)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def finished(http: httpx.Client, location: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        operation: dict[str, Any] = http.get(location).json()
        return operation if operation["status"] != "running" else None

    return eventually(done, timeout=30)


def test_pool_and_resource_lifecycle_through_the_gateway(
    kube_clean: KubeAPIServer, kube: httpx.Client, receiver: Receiver
) -> None:
    install_crd(kube, resourcepool_crd())
    for index in range(1, 5):
        make_node(kube, f"edge-{index}", instance_type="c6i.4xlarge")
    make_pod(kube, "du-1", "edge-1", labels={"app": "du"})
    budget = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "du-pdb"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "du"}}},
    }
    ok(kube.post(f"/apis/policy/v1beta1/namespaces/{NS}/poddisruptionbudgets", json=budget))

    with (
        serve_gateway(
            backend="kubernetes",
            kubeconfig=kube_clean.kubeconfig,
            access_log=False,
            callback_allowlist="127.0.0.1",
            drain_timeout=1.0,
            drain_grace_period=0,
        ) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False, timeout=30) as http,
    ):
        sub = http.post(f"{V1}/subscriptions", json={"callback": receiver.script("/k8s")})
        assert sub.status_code == 201, sub.text

        body = {
            "name": "far-edge",
            "description": "DUs of the far edge",
            "extensions": {
                "instanceType": "c6i.4xlarge",
                "replicas": 2,
                "labels": {"tier": "edge"},
            },
        }
        created = http.post(POOLS, json=body)
        assert created.status_code == 201, created.text
        pool = created.json()
        pool_id = pool["resourcePoolId"]
        assert created.headers["location"] == f"{POOLS}/{pool_id}"
        assert pool["name"] == "far-edge" and pool["description"] == "DUs of the far edge"
        # the backend object exists, and the view shows the nodes it took
        rp = ok(kube.get("/apis/o2ims.oran.org/v1alpha1/resourcepools/far-edge"))
        assert rp["spec"]["instanceType"] == "c6i.4xlarge"
        eventually(lambda: len(http.get(f"{POOLS}/{pool_id}/resources").json()["items"]) == 2)
        problem(http.post(POOLS, json=body), 409)  # the same name again

        patched = http.patch(f"{POOLS}/{pool_id}", json={"extensions": {"replicas": 3}})
        assert patched.status_code == 200, patched.text
        eventually(lambda: len(http.get(f"{POOLS}/{pool_id}/resources").json()["items"]) == 3)

        # a node whose pod a disruption budget protects is not retired
        names = {
            r["resourceId"]: r["extensions"].get("hostname") or r["description"]
            for r in http.get(f"{POOLS}/{pool_id}/resources").json()["items"]
        }
        protected = next(rid for rid, text in names.items() if "edge-1" in text)
        accepted = http.delete(f"{V1}/resources/{protected}")
        assert accepted.status_code == 202, accepted.text
        operation = finished(http, accepted.headers["location"])
        assert operation["status"] == "failed" and "du-pdb" in operation["error"], operation
        assert http.get(f"{V1}/resources/{protected}").status_code == 200
        assert ok(kube.get("/api/v1/nodes/edge-1"))["spec"].get("unschedulable") is not True

        # a node without protected pods is drained and removed
        free = next(rid for rid, text in names.items() if "edge-1" not in text)
        accepted = http.delete(f"{V1}/resources/{free}")
        operation = finished(http, accepted.headers["location"])
        assert operation["status"] == "succeeded", operation
        eventually(lambda: http.get(f"{V1}/resources/{free}").status_code == 404)

        assert "still has" in problem(http.delete(f"{POOLS}/{pool_id}"), 409)["detail"]
        assert http.delete(f"{POOLS}/{pool_id}", params={"force": "true"}).status_code == 204
        eventually(lambda: http.get(f"{POOLS}/{pool_id}").status_code == 404)
        assert kube.get("/apis/o2ims.oran.org/v1alpha1/resourcepools/far-edge").status_code == 404

        def pool_event_types() -> list[int]:
            found = []
            for received in receiver.received("/k8s"):
                event = json.loads(received.body)
                state = event.get("postObjectState") or event.get("priorObjectState") or {}
                if state.get("resourcePoolId") == pool_id and "resourceId" not in state:
                    found.append(event["notificationEventType"])
            return found

        types = eventually(lambda: (t := pool_event_types()) and t[-1] == 2 and t, timeout=30)
        assert types[0] == 0 and 1 in types


def test_batches_on_kubernetes_partial_and_atomic(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    install_crd(kube, resourcepool_crd())
    for index in range(1, 4):
        make_node(kube, f"core-{index}", instance_type="m6i.8xlarge")
    pools = "/apis/o2ims.oran.org/v1alpha1/resourcepools"

    def pool_objects() -> set[str]:
        return {item["metadata"]["name"] for item in ok(kube.get(pools))["items"]}

    with (
        serve_gateway(
            backend="kubernetes", kubeconfig=kube_clean.kubeconfig, access_log=False
        ) as gateway,
        httpx.Client(base_url=gateway.base_url, trust_env=False, timeout=30) as http,
    ):
        shape = {"instanceType": "m6i.8xlarge", "replicas": 1}
        partial = http.post(
            f"{V1}/batch",
            json={
                "operations": [
                    {
                        "op": "create",
                        "kind": "resourcePool",
                        "body": {"name": "core-a", "extensions": shape},
                    },
                    {"op": "create", "kind": "resourcePool", "body": {"name": "core-a"}},
                    {"op": "create", "kind": "resourcePool", "body": {"name": "Not Valid"}},
                ]
            },
        )
        assert partial.status_code == 207, partial.text
        assert [r["status"] for r in partial.json()["results"]] == [201, 409, 400]
        assert pool_objects() == {"core-a"}

        atomic = http.post(
            f"{V1}/batch",
            json={
                "atomic": True,
                "operations": [
                    {
                        "op": "create",
                        "kind": "resourcePool",
                        "body": {"name": "core-b", "extensions": shape},
                    },
                    {"op": "create", "kind": "resourcePool", "body": {"name": "core-a"}},
                ],
            },
        )
        assert atomic.status_code == 207, atomic.text
        result = atomic.json()
        assert result["committed"] is False
        assert [r["status"] for r in result["results"]] == [201, 409]
        assert result["results"][0]["rolledBack"] is True
        eventually(lambda: pool_objects() == {"core-a"})
        # the node core-b had taken is free again
        labels = [
            ok(kube.get(f"/api/v1/nodes/core-{i}"))["metadata"]["labels"] for i in range(1, 4)
        ]
        taken = [lab.get("o2ims.oran.org/resource-pool") for lab in labels]
        assert sorted(t for t in taken if t) == ["core-a"]
