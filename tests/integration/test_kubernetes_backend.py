"""The Kubernetes backend end to end: the real gateway over a real kube-apiserver 1.20.

Nodes, StorageClasses and cluster-api MachineSets are created through the API server (no
kubelet or controllers run: Node status is written directly); the gateway runs with
``backend="kubernetes"`` and is asked over HTTP.  Every wait is a bounded poll
(:func:`eventually`).  The API server is shared by the session (``kube_api`` in conftest.py),
and ``kube_clean`` empties it around every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from tests.api.spec_shapes import assert_shape
from tests.kubeapi import MACHINESET_CRD as SHARED_CRD
from tests.kubeapi import KubeAPIServer
from tests.servers import RunningGateway, serve_gateway

from netweave.adapters.base import EventType, InventoryEvent
from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.adapter import KubernetesAdapter
from netweave.adapters.kubernetes.watching import Backoff, Reflector, ResourceGoneError
from netweave.models.inventory import ObjectKind, Resource, ResourcePool

# The first test also pays for the session fixture: a cold build of kube-apiserver takes minutes.
pytestmark = pytest.mark.timeout(1800)

V1 = "/o2ims-infrastructureInventory/v1"
POOL = m.DEFAULT_POOL_LABEL
CLUSTER = "netweave-it"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
NODES = "/api/v1/nodes"
STORAGE_CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
CAPI = "/apis/cluster.x-k8s.io/v1beta1"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
FULL_CLUSTERROLE = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "clusterrole.yaml"
T0 = "2024-05-01T10:00:00Z"
OWNED_LABEL = "netweave.test/owned"  # conftest.py's kube_clean deletes what carries it
RBAC = "/apis/rbac.authorization.k8s.io/v1"

T = TypeVar("T")


# Polling ------------------------------------------------------------------------------------


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """``check()``'s value once it stops failing an assertion; its last failure at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


# Kubernetes objects -------------------------------------------------------------------------


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def ready_condition(ready: str = "True", heartbeat: str = T0) -> dict[str, str]:
    return {
        "type": "Ready",
        "status": ready,
        "reason": "KubeletReady" if ready == "True" else "KubeletNotReady",
        "message": "kubelet is posting ready status" if ready == "True" else "PLEG is not healthy",
        "lastHeartbeatTime": heartbeat,
        "lastTransitionTime": T0,
    }


def node_status(name: str, cpu: str, memory: str, *, ready: str = "True") -> dict[str, Any]:
    resources = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "capacity": resources,
        "allocatable": {**resources, "cpu": f"{int(cpu) * 1000 - 100}m"},
        "conditions": [ready_condition(ready)],
        "addresses": [
            {"type": "InternalIP", "address": f"10.0.0.{sum(name.encode()) % 250 + 1}"},
            {"type": "Hostname", "address": name},
        ],
        "nodeInfo": {
            "machineID": f"machine-{name}",
            "systemUUID": f"system-{name}",
            "bootID": f"boot-{name}",
            "kernelVersion": "6.1.0-18-amd64",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "containerRuntimeVersion": "containerd://1.7.13",
            "kubeletVersion": "v1.20.2",
            "kubeProxyVersion": "v1.20.2",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def create_node(
    kube: httpx.Client,
    name: str,
    *,
    pool: str | None = None,
    cpu: str = "4",
    memory: str = "16Gi",
    instance_type: str = "m5.xlarge",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Create a Node (spec, then status through the status subresource); the stored Node."""
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/zone": "eu-west-1a",
    }
    if pool is not None:
        labels[POOL] = pool
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        "spec": {"providerID": f"aws:///eu-west-1a/i-{name}"},
    }
    created(kube.post(NODES, json=body))
    status = {"status": node_status(name, cpu, memory)}
    return created(kube.patch(f"{NODES}/{name}/status", json=status, headers=MERGE_PATCH))


def create_storage_class(
    kube: httpx.Client, name: str, provisioner: str, *, default: bool = False
) -> dict[str, Any]:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    body = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": annotations},
        "provisioner": provisioner,
        "parameters": {"type": name},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    return created(kube.post(STORAGE_CLASSES, json=body))


def patch_node(
    kube: httpx.Client, name: str, patch: dict[str, Any], *, status: bool = False
) -> dict[str, Any]:
    path = f"{NODES}/{name}/status" if status else f"{NODES}/{name}"
    return created(kube.patch(path, json=patch, headers=MERGE_PATCH))


# The gateway --------------------------------------------------------------------------------


@contextlib.contextmanager
def gateway(kubeconfig: Path) -> Iterator[tuple[RunningGateway, httpx.Client]]:
    """The real gateway over the Kubernetes backend, and an HTTP client of it."""
    with (
        serve_gateway(
            backend="kubernetes", kubeconfig=kubeconfig, cluster_name=CLUSTER, access_log=False
        ) as running,
        httpx.Client(base_url=running.base_url, timeout=10.0, trust_env=False) as http,
    ):
        yield running, http


def wait_ready(http: httpx.Client, timeout: float = 10.0) -> None:
    def ready() -> None:
        response = http.get("/readyz")
        assert response.status_code == 200, response.text

    eventually(ready, timeout)


def context(running: RunningGateway, server: KubeAPIServer) -> m.MappingContext:
    """The mapping context the gateway's adapter uses, to compute the ids it must serve."""
    return m.MappingContext(
        ocloud_id=running.settings.effective_ocloud_id,
        cluster_name=CLUSTER,
        api_server_url=server.url,
    )


def adapter_of(running: RunningGateway) -> KubernetesAdapter:
    adapter = running.app.state.view._adapter
    assert isinstance(adapter, KubernetesAdapter)
    return adapter


def get_list(http: httpx.Client, path: str, shape: str) -> list[dict[str, Any]]:
    response = http.get(f"{V1}/{path}")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    for item in items:
        assert_shape(shape, item)
    return items


def pools_by_name(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {pool["name"]: pool for pool in get_list(http, "resourcePools", "ResourcePool")}


def resources_in(http: httpx.Client, pool_id: str) -> dict[str, dict[str, Any]]:
    items = get_list(http, f"resourcePools/{pool_id}/resources", "Resource")
    return {item["resourceId"]: item for item in items}


def pool_of_each_resource(http: httpx.Client) -> dict[str, str]:
    """resourceId -> resourcePoolId over every pool."""
    return {
        resource_id: pool["resourcePoolId"]
        for pool in pools_by_name(http).values()
        for resource_id in resources_in(http, pool["resourcePoolId"])
    }


def resource_types(http: httpx.Client) -> dict[str, dict[str, Any]]:
    items = get_list(http, "resourceTypes", "ResourceType")
    return {item["resourceTypeId"]: item for item in items}


class Recorder:
    """A view listener: every real InventoryEvent, recorded from the gateway's thread."""

    def __init__(self, running: RunningGateway) -> None:
        self._lock = threading.Lock()
        self._events: list[InventoryEvent] = []
        running.app.state.view.add_listener(self)

    def __call__(self, event: InventoryEvent) -> None:
        with self._lock:
            self._events.append(event)

    def events(
        self, kind: ObjectKind | None = None, object_id: str | None = None
    ) -> list[InventoryEvent]:
        with self._lock:
            events = list(self._events)
        return [
            e
            for e in events
            if (kind is None or e.kind is kind) and (object_id is None or e.object_id == object_id)
        ]

    def mark(self) -> int:
        with self._lock:
            return len(self._events)

    def since(self, mark: int) -> list[InventoryEvent]:
        with self._lock:
            return self._events[mark:]


# a. The inventory of a cluster --------------------------------------------------------------


def test_nodes_and_storage_classes_become_the_o2ims_inventory(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client
) -> None:
    edge = create_node(kube_admin, "edge-1", pool="edge")
    core = create_node(
        kube_admin, "core-1", pool="core", cpu="8", memory="32Gi", instance_type="m5.2xlarge"
    )
    plain = create_node(kube_admin, "plain-1")
    fast = create_storage_class(kube_admin, "fast", "ebs.csi.aws.com", default=True)
    local = create_storage_class(kube_admin, "local", "kubernetes.io/no-provisioner")
    kube_system = created(kube_admin.get("/api/v1/namespaces/kube-system"))
    assert edge["status"]["conditions"][0]["status"] == "True"  # the status was stored

    with gateway(kube_clean.kubeconfig) as (running, http):
        wait_ready(http)
        ctx = context(running, kube_clean)

        pools = eventually(lambda: _exactly(pools_by_name(http), {"edge", "core", "default"}))
        for name, value in (("edge", "edge"), ("core", "core"), ("default", None)):
            assert pools[name]["resourcePoolId"] == m.label_pool_id(value, ctx)
            assert pools[name]["oCloudId"] == ctx.ocloud_id
        assert pools["default"]["extensions"]["source"] == "default"
        assert pools["edge"]["extensions"]["nodeSelector"] == {POOL: "edge"}
        assert pools["edge"]["extensions"]["zones"] == ["eu-west-1a"]

        for name, node in (("edge", edge), ("core", core), ("default", plain)):
            pool_id = pools[name]["resourcePoolId"]
            resources = resources_in(http, pool_id)
            resource_id = m.node_resource_id(node, ctx)
            assert list(resources) == [resource_id], name
            resource = resources[resource_id]
            assert resource["resourcePoolId"] == pool_id
            assert resource["resourceTypeId"] == m.node_shape_type_id(m.node_shape(node), ctx)
            assert resource["globalAssetId"] == node["spec"]["providerID"]
            extensions = resource["extensions"]
            assert extensions["name"] == node["metadata"]["name"]
            assert extensions["uid"] == node["metadata"]["uid"]
            assert extensions["ready"] == "True"
            assert extensions["capacity"]["cpu"] == node["status"]["capacity"]["cpu"]
            assert extensions["nodeInfo"]["kubeletVersion"] == "v1.20.2"
            single = http.get(f"{V1}/resourcePools/{pool_id}/resources/{resource_id}")
            assert single.status_code == 200
            assert single.json() == resource

        types = resource_types(http)
        small, large = m.node_shape(edge), m.node_shape(core)
        assert m.node_shape(plain) == small
        expected = {
            m.node_shape_type_id(small, ctx): ("m5.xlarge", "COMPUTE"),
            m.node_shape_type_id(large, ctx): ("m5.2xlarge", "COMPUTE"),
            m.storage_class_type_id(fast, ctx): ("fast", "STORAGE"),
            m.storage_class_type_id(local, ctx): ("local", "STORAGE"),
        }
        assert {k: (t["name"], t["resourceClass"]) for k, t in types.items()} == expected
        assert types[m.storage_class_type_id(fast, ctx)]["extensions"]["isDefault"] is True
        assert types[m.storage_class_type_id(local, ctx)]["extensions"]["isDefault"] is False
        assert types[m.node_shape_type_id(small, ctx)]["vendor"] == "Amazon Web Services"

        managers = get_list(http, "deploymentManagers", "DeploymentManager")
        assert len(managers) == 1
        manager = managers[0]
        assert manager["deploymentManagerId"] == m.deployment_manager_id(kube_system, ctx)
        assert manager["serviceUri"] == kube_clean.url
        assert manager["name"] == CLUSTER
        assert manager["capabilities"]["kubernetesVersion"].startswith("v1.20.2")
        assert manager["capacity"]["nodes"] == "3"
        assert manager["capacity"]["cpu"] == "16"
        assert manager["capacity"]["memoryGiB"] == "64"
        assert adapter_of(running).degraded == []


def _exactly(pools: dict[str, dict[str, Any]], names: set[str]) -> dict[str, dict[str, Any]]:
    assert set(pools) == names
    return pools


# b. The view follows the cluster -------------------------------------------------------------


def test_the_view_follows_label_status_and_deletion_changes(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client
) -> None:
    edge = create_node(kube_admin, "edge-1", pool="edge")
    core = create_node(kube_admin, "core-1", pool="core")
    plain = create_node(kube_admin, "plain-1")

    with gateway(kube_clean.kubeconfig) as (running, http):
        wait_ready(http)
        ctx = context(running, kube_clean)
        recorder = Recorder(running)
        edge_id, core_id, plain_id = (m.node_resource_id(n, ctx) for n in (edge, core, plain))
        edge_pool, core_pool = m.label_pool_id("edge", ctx), m.label_pool_id("core", ctx)
        default_pool = m.label_pool_id(None, ctx)
        assert pool_of_each_resource(http) == {
            edge_id: edge_pool,
            core_id: core_pool,
            plain_id: default_pool,
        }

        # The pool label changes: the resource moves to the other pool.
        patch_node(kube_admin, "edge-1", {"metadata": {"labels": {POOL: "core"}}})

        def moved() -> None:
            assert pool_of_each_resource(http)[edge_id] == core_pool
            assert (
                http.get(f"{V1}/resourcePools/{edge_pool}/resources/{edge_id}").status_code == 404
            )

        eventually(moved)

        def move_events() -> None:
            [move] = recorder.events(ObjectKind.RESOURCE, edge_id)
            assert move.type is EventType.MODIFY
            assert isinstance(move.prior, Resource) and isinstance(move.post, Resource)
            pools = (move.prior.resource_pool_id, move.post.resource_pool_id)
            assert pools == (edge_pool, core_pool)
            [grown] = recorder.events(ObjectKind.RESOURCE_POOL, core_pool)
            assert grown.type is EventType.MODIFY
            assert isinstance(grown.post, ResourcePool)
            assert grown.post.extensions["nodeCount"] == 2
            [emptied] = recorder.events(ObjectKind.RESOURCE_POOL, edge_pool)  # no node left
            assert emptied.type is EventType.DELETE

        eventually(move_events)

        # The Ready condition turns False: extensions say so.
        not_ready = {"status": {"conditions": [ready_condition("False")]}}
        patch_node(kube_admin, "core-1", not_ready, status=True)

        def shows_not_ready() -> dict[str, Any]:
            got = http.get(f"{V1}/resourcePools/{core_pool}/resources/{core_id}")
            assert got.status_code == 200
            extensions: dict[str, Any] = got.json()["extensions"]
            assert extensions["ready"] == "False"
            return extensions

        extensions = eventually(shows_not_ready)
        assert extensions["status"] == "NotReady"
        assert extensions["conditions"]["Ready"]["reason"] == "KubeletNotReady"

        def readiness_event() -> None:
            [readiness] = recorder.events(ObjectKind.RESOURCE, core_id)
            assert readiness.type is EventType.MODIFY
            assert isinstance(readiness.post, Resource)
            assert readiness.post.extensions["ready"] == "False"

        eventually(readiness_event)

        # A heartbeat-only status update changes the Node, not its O2-IMS resource: no event.
        mark, started = recorder.mark(), time.monotonic()
        before = plain["metadata"]["resourceVersion"]
        beat = {"status": {"conditions": [ready_condition(heartbeat="2024-05-01T10:00:40Z")]}}
        after = patch_node(kube_admin, "plain-1", beat, status=True)
        assert after["metadata"]["resourceVersion"] != before  # a real watch event
        # A later change on the same watch stream: once it shows, the heartbeat was handled.
        barrier = {"metadata": {"labels": {"netweave.test/barrier": "1"}}}
        patch_node(kube_admin, "core-1", barrier)
        eventually(lambda: _asserted(recorder.events(ObjectKind.RESOURCE, core_id)[1:]))
        time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
        [barrier_event] = recorder.since(mark)  # and nothing else: nothing for plain-1
        assert (barrier_event.kind, barrier_event.object_id) == (ObjectKind.RESOURCE, core_id)
        assert recorder.events(object_id=plain_id) == []

        # The node is deleted: 404, and a DELETE event with the state it had.
        assert kube_admin.delete(f"{NODES}/plain-1").status_code == 200
        resource_url = f"{V1}/resourcePools/{default_pool}/resources/{plain_id}"
        eventually(lambda: _asserted(http.get(resource_url).status_code == 404))

        def delete_event() -> None:
            [deleted] = recorder.events(ObjectKind.RESOURCE, plain_id)
            assert deleted.type is EventType.DELETE
            assert deleted.post is None and isinstance(deleted.prior, Resource)
            assert deleted.prior.extensions["name"] == "plain-1"
            assert deleted.prior.resource_pool_id == default_pool
            assert http.get(f"{V1}/resourcePools/{default_pool}").status_code == 404

        eventually(delete_event)
        [manager] = get_list(http, "deploymentManagers", "DeploymentManager")
        assert manager["capacity"]["nodes"] == "2"


def _asserted(value: T) -> T:
    assert value
    return value


# c. cluster-api MachineSets are pools -------------------------------------------------------

MACHINESET_CRD: dict[str, Any] = {
    **SHARED_CRD,
    "metadata": {"name": SHARED_CRD["metadata"]["name"], "labels": {OWNED_LABEL: "true"}},
}
CAPI_NAMESPACE = "netweave-capi"


def install_machineset_crd(kube: httpx.Client) -> None:
    created(kube.post(CRDS, json=MACHINESET_CRD))

    def served() -> None:
        crd = kube.get(f"{CRDS}/machinesets.cluster.x-k8s.io").json()
        listed = (crd.get("status") or {}).get("conditions") or []
        conditions = {c["type"]: c["status"] for c in listed}
        assert conditions.get("Established") == "True", conditions
        discovery = kube.get(CAPI)  # what the adapter discovers at start
        assert discovery.status_code == 200
        assert "machinesets" in {r["name"] for r in discovery.json()["resources"]}
        assert kube.get(f"{CAPI}/machinesets").status_code == 200

    eventually(served, timeout=30)


def test_a_node_owned_by_a_machineset_is_in_the_machineset_pool(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client
) -> None:
    namespace = kube_admin.post(
        "/api/v1/namespaces",
        json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CAPI_NAMESPACE}},
    )
    assert namespace.status_code in (201, 409), namespace.text  # kept: no namespace controller
    try:
        install_machineset_crd(kube_admin)
        # The adapter discovers cluster-api when it starts: start it after the CRD exists.
        with gateway(kube_clean.kubeconfig) as (running, http):
            wait_ready(http)
            ctx = context(running, kube_clean)
            machineset = created(
                kube_admin.post(
                    f"{CAPI}/namespaces/{CAPI_NAMESPACE}/machinesets",
                    json={
                        "apiVersion": "cluster.x-k8s.io/v1beta1",
                        "kind": "MachineSet",
                        "metadata": {"name": "edge-du"},
                        "spec": {
                            "clusterName": "ran-edge",
                            "replicas": 1,
                            "selector": {"matchLabels": {"pool": "edge-du"}},
                            "template": {
                                "spec": {
                                    "clusterName": "ran-edge",
                                    "failureDomain": "eu-west-1a",
                                    "bootstrap": {},
                                }
                            },
                        },
                    },
                )
            )
            node = create_node(
                kube_admin,
                "capi-1",
                pool="edge",  # the owning MachineSet wins over the pool label
                annotations={
                    "cluster.x-k8s.io/owner-kind": "MachineSet",
                    "cluster.x-k8s.io/owner-name": "edge-du",
                    "cluster.x-k8s.io/cluster-namespace": CAPI_NAMESPACE,
                },
            )
            ms_pool = m.machineset_pool_id(machineset, ctx)
            resource_id = m.node_resource_id(node, ctx)

            def in_machineset_pool() -> dict[str, dict[str, Any]]:
                pools = _exactly(pools_by_name(http), {"edge-du"})
                assert pool_of_each_resource(http) == {resource_id: ms_pool}
                return pools

            pool = eventually(in_machineset_pool)["edge-du"]
            assert pool["resourcePoolId"] == ms_pool
            assert pool["location"] == "eu-west-1a"
            assert pool["extensions"]["source"] == "MachineSet"
            assert pool["extensions"]["namespace"] == CAPI_NAMESPACE
            assert pool["extensions"]["replicas"] == 1
            resource = http.get(f"{V1}/resourcePools/{ms_pool}/resources/{resource_id}").json()
            assert resource["extensions"]["annotations"]["cluster.x-k8s.io/owner-name"] == "edge-du"

            # Without its MachineSet, the node falls back to its pool label.
            deleted = kube_admin.delete(f"{CAPI}/namespaces/{CAPI_NAMESPACE}/machinesets/edge-du")
            assert deleted.status_code == 200, deleted.text
            edge_pool = m.label_pool_id("edge", ctx)
            eventually(lambda: _exactly(pools_by_name(http), {"edge"}))
            assert pool_of_each_resource(http) == {resource_id: edge_pool}
    finally:
        response = kube_admin.delete(f"{CRDS}/machinesets.cluster.x-k8s.io")
        assert response.status_code in (200, 404), response.text


# d. The API server restarts under a running gateway -----------------------------------------


def test_an_api_server_restart_loses_nothing(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client
) -> None:
    create_node(kube_admin, "before-1", pool="edge")
    doomed = create_node(kube_admin, "doomed-1", pool="edge")
    create_storage_class(kube_admin, "before", "kubernetes.io/no-provisioner")

    with gateway(kube_clean.kubeconfig) as (running, http):
        wait_ready(http)
        ctx = context(running, kube_clean)
        pools_before = http.get(f"{V1}/resourcePools").json()
        types_before = resource_types(http)

        kube_clean.stop_apiserver()
        # The last view is still served while the API server is away.
        assert http.get("/readyz").status_code == 200
        assert http.get(f"{V1}/resourcePools").json() == pools_before
        assert resource_types(http) == types_before

        kube_clean.start_apiserver()
        # Right after the restart, perhaps before the watches are back: changes of all kinds.
        assert kube_admin.delete(f"{NODES}/doomed-1").status_code == 200
        after = create_node(kube_admin, "after-1", pool="core")
        storage = create_storage_class(kube_admin, "after", "ebs.csi.aws.com")

        def caught_up() -> None:
            assert pool_of_each_resource(http) == {
                m.node_resource_id(n, ctx): m.label_pool_id(p, ctx)
                for n, p in (
                    (created(kube_admin.get(f"{NODES}/before-1")), "edge"),
                    (after, "core"),
                )
            }
            assert m.storage_class_type_id(storage, ctx) in resource_types(http)

        eventually(caught_up, timeout=40)  # the watches come back after their backoff
        assert m.node_resource_id(doomed, ctx) not in pool_of_each_resource(http)
        adapter = adapter_of(running)
        assert adapter._nodes.restarts >= 1
        assert adapter.degraded == []


# e. A stale resourceVersion: 410, relist, diff ----------------------------------------------


async def test_a_stale_resource_version_is_gone_and_the_relist_reports_the_difference(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client
) -> None:
    # kube-apiserver 1.20 serves watches from its watch cache, whose window starts at the etcd
    # revision it listed when it started.  Started on an empty etcd (as the session's server
    # is), that is revision 1 or so, and a watch from "1" just replays every event.  Restarted,
    # the window starts at the current revision and "1" is too old: the server answers 200 and
    # an ERROR event {"code": 410, "reason": "Expired", "message": "too old resource version:
    # 1 (<current>)"}.  So restart it first (no watch is open: it stops at once).
    await asyncio.to_thread(kube_clean.stop_apiserver)
    await asyncio.to_thread(kube_clean.start_apiserver)
    kept = await asyncio.to_thread(create_node, kube_admin, "kept-1")
    removed = await asyncio.to_thread(create_node, kube_admin, "removed-1")
    adapter = KubernetesAdapter.from_kubeconfig(
        ocloud_id="2d2f5a4c-6a43-5b5e-9a36-0d8f8e6c3a11", kubeconfig=kube_clean.kubeconfig
    )
    changes: list[tuple[str, str | None, str | None]] = []

    def on_change(uid: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        changes.append((uid, _name(old), _name(new)))

    reflector = Reflector(
        adapter._http,
        NODES,
        resource="nodes",
        on_change=on_change,
        backoff=Backoff(initial=0.05, maximum=0.5),
    )
    try:
        await reflector.relist()
        assert set(reflector.objects) == {kept["metadata"]["uid"], removed["metadata"]["uid"]}
        changes.clear()

        # Changes while nobody watches, then a resume point the server no longer keeps.
        deleted = await asyncio.to_thread(kube_admin.delete, f"{NODES}/removed-1")
        assert deleted.status_code == 200
        added = await asyncio.to_thread(create_node, kube_admin, "added-1")
        reflector.resource_version = "1"
        with pytest.raises(ResourceGoneError, match="too old resource version"):
            await reflector.watch_once()
        assert changes == []

        task = asyncio.create_task(reflector.run())
        try:
            async with asyncio.timeout(10):
                while len(changes) < 2:
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert sorted(changes, key=lambda c: c[0]) == sorted(
            [
                (added["metadata"]["uid"], None, "added-1"),  # created meanwhile
                (removed["metadata"]["uid"], "removed-1", None),  # deleted meanwhile
            ],
            key=lambda c: c[0],
        )  # kept-1 did not change: not reported
        assert set(reflector.objects) == {kept["metadata"]["uid"], added["metadata"]["uid"]}
        assert reflector.resource_version not in (None, "1")
    finally:
        await adapter.aclose()


def _name(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str(obj["metadata"]["name"])


# f. The API server is down when the gateway starts ------------------------------------------


def test_an_unreachable_api_server_is_not_ready_until_it_comes(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_node(kube_admin, "early-1", pool="edge")
    monkeypatch.setattr("netweave.app._FIRST_SYNC_WAIT", 0.5)  # start serving sooner
    kube_clean.stop_apiserver()

    with gateway(kube_clean.kubeconfig) as (_running, http):

        def not_ready() -> str:
            response = http.get("/readyz")
            assert response.status_code == 503
            assert response.headers["retry-after"]
            reason: str = response.json()["reason"]
            assert "API server" in reason, reason
            return reason

        reason = eventually(not_ready)
        assert kube_clean.url in reason
        for path in ("resourcePools", "resourceTypes", "deploymentManagers"):
            response = http.get(f"{V1}/{path}")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) > 0
            problem = response.json()
            assert_shape("ProblemDetails", problem)
            assert problem["status"] == 503
            assert kube_clean.url in problem["detail"]

        kube_clean.start_apiserver()
        wait_ready(http, timeout=30)  # the view retries with backoff (0.5 s doubling)
        assert set(pools_by_name(http)) == {"edge"}
        assert len(get_list(http, "deploymentManagers", "DeploymentManager")) == 1


# g. RBAC: a missing permission degrades, the shipped ClusterRole is enough -------------------


def grant(kube: httpx.Client, role: dict[str, Any], binding_name: str) -> None:
    """Create ``role`` (a ClusterRole) and bind it to user netweave-restricted."""
    role.setdefault("metadata", {}).setdefault("labels", {})[OWNED_LABEL] = "true"
    created(kube.post(f"{RBAC}/clusterroles", json=role))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": binding_name, "labels": {OWNED_LABEL: "true"}},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role["metadata"]["name"],
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "netweave-restricted"}
        ],
    }
    created(kube.post(f"{RBAC}/clusterrolebindings", json=binding))


def restricted_status(server: KubeAPIServer, path: str) -> int:
    with server.client(server.restricted_token, timeout=10.0) as http:
        return http.get(path).status_code


def test_rbac_missing_permission_degrades_and_the_shipped_role_suffices(
    kube_clean: KubeAPIServer, kube_admin: httpx.Client
) -> None:
    edge = create_node(kube_admin, "edge-1", pool="edge")
    create_node(kube_admin, "plain-1")
    fast = create_storage_class(kube_admin, "fast", "ebs.csi.aws.com")
    kube_system = created(kube_admin.get("/api/v1/namespaces/kube-system"))
    assert restricted_status(kube_clean, NODES) == 403

    nodes_only = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "netweave-test-nodes-only"},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            {"nonResourceURLs": ["/version"], "verbs": ["get"]},
        ],
    }
    grant(kube_admin, nodes_only, "netweave-test-nodes-only")
    eventually(lambda: _asserted(restricted_status(kube_clean, NODES) == 200))
    assert restricted_status(kube_clean, STORAGE_CLASSES) == 403

    with gateway(kube_clean.restricted_kubeconfig) as (running, http):
        wait_ready(http)
        ctx = context(running, kube_clean)
        pools = _exactly(pools_by_name(http), {"edge", "default"})
        edge_resources = resources_in(http, pools["edge"]["resourcePoolId"])
        assert list(edge_resources) == [m.node_resource_id(edge, ctx)]
        types = resource_types(http)
        assert {t["resourceClass"] for t in types.values()} == {"COMPUTE"}  # no storage
        [manager] = get_list(http, "deploymentManagers", "DeploymentManager")
        assert manager["deploymentManagerId"] == m.deployment_manager_id(kube_system, ctx)
        assert adapter_of(running).degraded == [
            "forbidden to list/watch storageclasses.storage.k8s.io"
        ]

    full = yaml.safe_load(FULL_CLUSTERROLE.read_text())
    assert full["kind"] == "ClusterRole"
    grant(kube_admin, full, "netweave-test-full")
    eventually(lambda: _asserted(restricted_status(kube_clean, STORAGE_CLASSES) == 200))

    with gateway(kube_clean.restricted_kubeconfig) as (running, http):
        wait_ready(http)
        ctx = context(running, kube_clean)
        assert set(pools_by_name(http)) == {"edge", "default"}
        types = resource_types(http)
        storage = types[m.storage_class_type_id(fast, ctx)]
        assert (storage["name"], storage["resourceClass"]) == ("fast", "STORAGE")
        assert adapter_of(running).degraded == []
