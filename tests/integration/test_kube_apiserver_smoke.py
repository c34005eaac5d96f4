"""Smoke test of the real kube-apiserver the integration tests run against (tests/kubeapi.py).

Covers what the Kubernetes adapter relies on: Nodes, label selectors, StorageClasses, a
cluster-api MachineSet CRD with its scale subresource, watches, patches, RBAC denial for the
restricted user, and an API-server restart with etcd (and so the data) kept.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from tests.kubeapi import (
    MACHINESET_CRD,
    KubeAPIServer,
    build_kube_apiserver,
    running_kube_apiserver,
)
from tests.kubeapi import MACHINESET_CRD_NAME as CRD_NAME

# The first test also pays for the session fixture: a cold build of kube-apiserver takes minutes.
pytestmark = pytest.mark.timeout(1800)

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
POOL = "netweave.test/pool"


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    build_kube_apiserver()  # a no-op when the binary is cached
    with running_kube_apiserver(tmp_path_factory.mktemp("kube-apiserver")) as server:
        yield server


@pytest.fixture
def kube(kube_apiserver: KubeAPIServer) -> Iterator[httpx.Client]:
    with kube_apiserver.client(timeout=httpx.Timeout(10.0, read=30.0)) as http:
        yield http


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def create(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_kubeconfigs_point_at_the_server(kube_apiserver: KubeAPIServer) -> None:
    for path, token in (
        (kube_apiserver.kubeconfig, kube_apiserver.admin_token),
        (kube_apiserver.restricted_kubeconfig, kube_apiserver.restricted_token),
    ):
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == kube_apiserver.url
        assert kube_apiserver.url.startswith("https://127.0.0.1:")
        ca = base64.b64decode(cluster["certificate-authority-data"])
        assert ca == kube_apiserver.ca_file.read_bytes()
        assert config["users"][0]["user"]["token"] == token
        assert path.stat().st_mode & 0o077 == 0  # the tokens stay private
    assert kube_apiserver.admin_token != kube_apiserver.restricted_token


def test_version_is_1_20(kube: httpx.Client) -> None:
    version = kube.get("/version").json()
    assert (version["major"], version["minor"]) == ("1", "20")
    assert version["gitVersion"].startswith("v1.20.2")


def test_nodes_and_label_selectors(kube: httpx.Client) -> None:
    create(kube, "/api/v1/nodes", node("smoke-node-a", **{POOL: "alpha"}))
    create(kube, "/api/v1/nodes", node("smoke-node-b", **{POOL: "beta"}))

    listing = kube.get("/api/v1/nodes", params={"labelSelector": f"{POOL}=alpha"})
    assert listing.status_code == 200, listing.text
    assert [item["metadata"]["name"] for item in listing.json()["items"]] == ["smoke-node-a"]

    listing = kube.get("/api/v1/nodes", params={"labelSelector": POOL})
    names = {item["metadata"]["name"] for item in listing.json()["items"]}
    assert names == {"smoke-node-a", "smoke-node-b"}


def test_storage_class(kube: httpx.Client) -> None:
    create(
        kube,
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "smoke-standard"},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )
    got = kube.get("/apis/storage.k8s.io/v1/storageclasses/smoke-standard")
    assert got.status_code == 200
    assert got.json()["provisioner"] == "kubernetes.io/no-provisioner"


def test_machineset_crd_with_scale_subresource(kube: httpx.Client) -> None:
    create(kube, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", MACHINESET_CRD)
    deadline = time.monotonic() + 30
    while True:  # until Established, and the new resource is served
        crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}")
        status = crd.json().get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        served = kube.get("/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinesets")
        if conditions.get("Established") == "True" and served.status_code == 200:
            break
        assert time.monotonic() < deadline, f"CRD not served: {conditions} {served.status_code}"
        time.sleep(0.2)

    base = "/apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinesets"
    create(
        kube,
        base,
        {
            "apiVersion": "cluster.x-k8s.io/v1beta1",
            "kind": "MachineSet",
            "metadata": {"name": "smoke-workers", "labels": {POOL: "workers"}},
            "spec": {
                "clusterName": "smoke",
                "replicas": 2,
                "selector": {"matchLabels": {POOL: "workers"}},
                "template": {"spec": {"clusterName": "smoke", "bootstrap": {}}},
            },
        },
    )
    listing = kube.get(base, params={"labelSelector": f"{POOL}=workers"})
    assert [item["metadata"]["name"] for item in listing.json()["items"]] == ["smoke-workers"]

    scale = kube.get(f"{base}/smoke-workers/scale")
    assert scale.status_code == 200, scale.text
    assert scale.json()["kind"] == "Scale"
    assert scale.json()["spec"]["replicas"] == 2

    patched = kube.patch(
        f"{base}/smoke-workers/scale", json={"spec": {"replicas": 3}}, headers=MERGE_PATCH
    )
    assert patched.status_code == 200, patched.text
    assert kube.get(f"{base}/smoke-workers").json()["spec"]["replicas"] == 3


def test_watch_sees_a_patched_node(kube_apiserver: KubeAPIServer, kube: httpx.Client) -> None:
    selector = f"{POOL}=watched"
    create(kube, "/api/v1/nodes", node("smoke-node-watched", **{POOL: "watched"}))
    version = kube.get("/api/v1/nodes", params={"labelSelector": selector}).json()["metadata"][
        "resourceVersion"
    ]
    params = {
        "watch": "1",
        "labelSelector": selector,
        "resourceVersion": version,
        "timeoutSeconds": "30",
    }
    with kube.stream("GET", "/api/v1/nodes", params=params) as watch:
        assert watch.status_code == 200
        with kube_apiserver.client(timeout=10.0) as writer:
            response = writer.patch(
                "/api/v1/nodes/smoke-node-watched",
                json={"metadata": {"labels": {"netweave.test/state": "patched"}}},
                headers=MERGE_PATCH,
            )
            assert response.status_code == 200, response.text
        for line in watch.iter_lines():
            event = json.loads(line)
            labels = event["object"]["metadata"].get("labels", {})
            if event["type"] == "MODIFIED" and labels.get("netweave.test/state") == "patched":
                break
        else:
            pytest.fail("the watch ended without the MODIFIED event")


def test_restricted_user_is_forbidden_to_list_nodes(kube_apiserver: KubeAPIServer) -> None:
    with kube_apiserver.client(kube_apiserver.restricted_token, timeout=10.0) as http:
        assert http.get("/api").status_code == 200  # authenticated: discovery is allowed
        denied = http.get("/api/v1/nodes")
        assert denied.status_code == 403, denied.text
        assert denied.json()["reason"] == "Forbidden"
        assert '"netweave-restricted"' in denied.json()["message"]
    with kube_apiserver.client("not-a-token", timeout=10.0) as http:
        assert http.get("/api/v1/nodes").status_code == 401


def assert_down(kube_apiserver: KubeAPIServer) -> None:
    # stop_apiserver returns once the process is gone, its sockets closed: connections refused.
    with kube_apiserver.client(timeout=5.0) as fresh, pytest.raises(httpx.ConnectError):
        fresh.get("/readyz")


def test_apiserver_restart(kube_apiserver: KubeAPIServer, kube: httpx.Client) -> None:
    pid_before = kube_apiserver.pids["kube-apiserver"]
    with kube.stream("GET", "/api/v1/nodes", params={"watch": "1", "labelSelector": POOL}) as watch:
        assert watch.status_code == 200
        lines = watch.iter_lines()
        next(lines)  # the initial ADDED events: the watch is live
        started = time.monotonic()
        kube_apiserver.stop_apiserver()
        # The stop ends the watch, cleanly or with a transport error.
        with contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError):
            for _ in lines:
                pass
        assert time.monotonic() - started < 25
    assert kube_apiserver.pids["kube-apiserver"] is None
    assert_down(kube_apiserver)

    kube_apiserver.start_apiserver()
    assert kube_apiserver.pids["kube-apiserver"] not in (None, pid_before)
    assert kube.get("/readyz").text == "ok"
    # Same port, same etcd: the data outlived the API server.
    still_there = kube.get("/api/v1/nodes/smoke-node-a")
    assert still_there.status_code == 200, still_there.text

    kube_apiserver.stop_apiserver(kill=True)  # a crash, this time
    assert_down(kube_apiserver)
    kube_apiserver.start_apiserver()
    assert kube.get("/api/v1/nodes/smoke-node-a").status_code == 200
