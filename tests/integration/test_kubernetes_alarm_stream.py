"""Node alarms of the Kubernetes backend against a real kube-apiserver.

The adapter runs directly (no gateway) over the session's API server and its
``alarm_signals()`` stream is recorded.  No kubelet runs, so the tests play it: node
status is written through the ``/api/v1/nodes/{name}/status`` subresource, and Warning
events are created the way the kubelet creates them (namespace ``default``, the node's
name as ``involvedObject.uid``).  Events are not among what ``kube_clean`` deletes, so
the ``events`` fixture empties namespace ``default`` of them around every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.kubeapi import KubeAPIServer

from netweave.adapters.alarm_catalog import NODE_DEFINITIONS
from netweave.adapters.alarms import (
    SEVERITY_CRITICAL,
    SEVERITY_MAJOR,
    SEVERITY_WARNING,
    AlarmSignal,
    AlarmSnapshot,
    AlarmSource,
)
from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.adapter import KubernetesAdapter
from netweave.models.ids import default_ocloud_id

pytestmark = pytest.mark.timeout(300)

OCLOUD = default_ocloud_id("k8s-alarm-tests")
CLUSTER = "netweave-alarms"
NODES = "/api/v1/nodes"
EVENTS = "/api/v1/namespaces/default/events"
STORAGE_CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
OWNED_LABEL = "netweave.test/owned"  # conftest.py's kube_clean deletes what carries it
SHIPPED_CLUSTERROLE = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "clusterrole.yaml"
MERGE = {"Content-Type": "application/merge-patch+json"}
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"
T2 = "2024-05-01T10:09:00Z"
JSON = dict[str, Any]


def ok(response: httpx.Response) -> JSON:
    assert response.status_code in (200, 201), response.text
    body: JSON = response.json()
    return body


def ctx() -> m.MappingContext:
    return m.MappingContext(ocloud_id=OCLOUD, cluster_name=CLUSTER, api_server_url="unused")


# Playing the kubelet ------------------------------------------------------------------------


def condition(kind: str, status: str, since: str = T0, heartbeat: str = T0) -> JSON:
    reasons = {
        ("Ready", "True"): ("KubeletReady", "kubelet is posting ready status"),
        ("Ready", "False"): ("KubeletNotReady", "container runtime is down"),
        ("MemoryPressure", "True"): ("KubeletHasInsufficientMemory", "insufficient memory"),
    }
    reason, message = reasons.get((kind, status), (f"{kind}{status}", f"{kind} is {status}"))
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": heartbeat,
        "lastTransitionTime": since,
    }


def set_conditions(kube: httpx.Client, name: str, *conditions: JSON) -> JSON:
    """Replace the node's conditions (a merge patch replaces the whole list)."""
    body = {"status": {"conditions": list(conditions)}}
    return ok(kube.patch(f"{NODES}/{name}/status", json=body, headers=MERGE))


def healthy(since: str = T0, heartbeat: str = T0) -> list[JSON]:
    return [
        condition("Ready", "True", since, heartbeat),
        condition("MemoryPressure", "False", since, heartbeat),
        condition("DiskPressure", "False", since, heartbeat),
        condition("PIDPressure", "False", since, heartbeat),
    ]


def make_node(kube: httpx.Client, name: str, instance_type: str = "m5.xlarge") -> JSON:
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "node.kubernetes.io/instance-type": instance_type,
            },
        },
        "spec": {"providerID": f"aws:///eu-west-1a/i-{name}"},
    }
    ok(kube.post(NODES, json=body))
    return set_conditions(kube, name, *healthy())


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def warning_event(kube: httpx.Client, node: str, reason: str, message: str) -> JSON:
    """A Warning event about ``node`` as the kubelet writes it."""
    stamp = now_stamp()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{node}.{uuid.uuid4().hex[:12]}", "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node, "uid": node},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "source": {"component": "kubelet", "host": node},
    }
    return ok(kube.post(EVENTS, json=body))


def repeat_event(kube: httpx.Client, event: JSON) -> JSON:
    """The kubelet's repeat of an event: the same object, count + 1."""
    patch = {"count": event["count"] + 1, "lastTimestamp": now_stamp()}
    path = f"{EVENTS}/{event['metadata']['name']}"
    return ok(kube.patch(path, json=patch, headers=MERGE))


@pytest.fixture
def kube(kube_admin: httpx.Client) -> Iterator[httpx.Client]:
    """The admin client of a clean API server, with no event in namespace default."""
    ok(kube_admin.delete(EVENTS))
    yield kube_admin
    ok(kube_admin.delete(EVENTS))


# The adapter and its alarm stream -------------------------------------------------------------


@dataclass
class Alarms:
    """An adapter and everything its ``alarm_signals()`` stream carried."""

    adapter: KubernetesAdapter
    items: list[AlarmSnapshot | AlarmSignal] = field(default_factory=list)

    @property
    def snapshots(self) -> list[AlarmSnapshot]:
        return [item for item in self.items if isinstance(item, AlarmSnapshot)]

    def mark(self) -> int:
        return len(self.items)

    def since(self, mark: int) -> list[AlarmSnapshot | AlarmSignal]:
        return self.items[mark:]

    async def signal(
        self, check: Callable[[AlarmSignal], bool], *, since: int = 0, within: float = 10.0
    ) -> AlarmSignal:
        """The first signal since ``since`` passing ``check``."""
        deadline = time.monotonic() + within
        while True:
            for item in self.items[since:]:
                if isinstance(item, AlarmSignal) and check(item):
                    return item
            assert time.monotonic() < deadline, f"no such signal in {self.items[since:]}"
            await asyncio.sleep(0.02)

    async def snapshot(self, *, since: int = 0, within: float = 10.0) -> AlarmSnapshot:
        deadline = time.monotonic() + within
        while True:
            for item in self.items[since:]:
                if isinstance(item, AlarmSnapshot):
                    return item
            assert time.monotonic() < deadline, f"no snapshot in {self.items[since:]}"
            await asyncio.sleep(0.02)


def is_(key: str, raised: bool) -> Callable[[AlarmSignal], bool]:
    return lambda signal: signal.key == key and signal.raised is raised


@contextlib.asynccontextmanager
async def alarms(kubeconfig: Path) -> AsyncIterator[Alarms]:
    adapter = KubernetesAdapter.from_kubeconfig(
        ocloud_id=OCLOUD, kubeconfig=kubeconfig, cluster_name=CLUSTER
    )
    state = Alarms(adapter)

    async def follow() -> None:
        async for item in adapter.alarm_signals():
            assert isinstance(item, AlarmSnapshot | AlarmSignal)
            state.items.append(item)

    task = asyncio.create_task(follow())
    try:
        await state.snapshot(within=30)
        yield state
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await adapter.aclose()


async def blocking(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a synchronous admin-client call off the event loop the adapter runs on."""
    return await asyncio.to_thread(call, *args, **kwargs)


def keys(snapshot: AlarmSnapshot) -> set[str]:
    return {signal.key for signal in snapshot.active}


# Conditions -------------------------------------------------------------------------------------


async def test_ready_and_memory_pressure_raise_and_clear(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    node = make_node(kube, "worker-1")
    uid = node["metadata"]["uid"]
    resource_id = m.node_resource_id(node, ctx())
    type_id = m.node_shape_type_id(m.node_shape(node), ctx())

    async with alarms(kube_clean.kubeconfig) as state:
        adapter = state.adapter
        assert isinstance(adapter, AlarmSource)
        assert state.items == [AlarmSnapshot(active=())]  # a healthy node: nothing active
        [dictionary] = adapter.alarm_dictionaries()
        assert dictionary.resource_type_id == type_id
        assert dictionary.definitions == NODE_DEFINITIONS

        # Ready -> False raises node-not-ready, stamped with the condition's transition.
        mark = state.mark()
        await blocking(
            set_conditions, kube, "worker-1", condition("Ready", "False", T1), *healthy()[1:]
        )
        raised = await state.signal(is_(f"{uid}/node-not-ready", True), since=mark)
        assert (raised.definition_key, raised.severity) == ("node-not-ready", SEVERITY_CRITICAL)
        assert (raised.resource_id, raised.resource_type_id) == (resource_id, type_id)
        assert raised.event_time == datetime.fromisoformat(T1).timestamp()
        assert raised.extensions["nodeName"] == "worker-1"
        assert raised.extensions["reason"] == "KubeletNotReady"

        # A heartbeat-only update is no alarm change; Ready back to True clears.
        mark = state.mark()
        heartbeat = [condition("Ready", "False", T1, heartbeat=T2), *healthy()[1:]]
        await blocking(set_conditions, kube, "worker-1", *heartbeat)
        await blocking(set_conditions, kube, "worker-1", *healthy(since=T2))
        cleared = await state.signal(is_(f"{uid}/node-not-ready", False), since=mark)
        assert cleared.event_time == datetime.fromisoformat(T2).timestamp()
        assert state.since(mark) == [cleared]  # the heartbeat signalled nothing

        # MemoryPressure True raises (MAJOR); recovering clears.
        mark = state.mark()
        pressure = [*healthy()[:1], condition("MemoryPressure", "True", T1), *healthy()[2:]]
        await blocking(set_conditions, kube, "worker-1", *pressure)
        raised = await state.signal(is_(f"{uid}/node-memory-pressure", True), since=mark)
        assert raised.severity == SEVERITY_MAJOR
        await blocking(set_conditions, kube, "worker-1", *healthy(since=T2))
        await state.signal(is_(f"{uid}/node-memory-pressure", False), since=mark)
        assert len(state.since(mark)) == 2

        # Ready Unknown (the node controller's verdict on a silent kubelet) is unreachable.
        mark = state.mark()
        silent = [condition("Ready", "Unknown", T1), *healthy()[1:]]
        await blocking(set_conditions, kube, "worker-1", *silent)
        await state.signal(is_(f"{uid}/node-unreachable", True), since=mark)


async def test_every_stream_gets_everything_and_a_relist_resends_a_snapshot(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    node = make_node(kube, "worker-2")
    uid = node["metadata"]["uid"]
    async with alarms(kube_clean.kubeconfig) as first:
        second: list[AlarmSnapshot | AlarmSignal] = []

        async def follow() -> None:
            async for item in first.adapter.alarm_signals():
                assert isinstance(item, AlarmSnapshot | AlarmSignal)
                second.append(item)

        task = asyncio.create_task(follow())
        try:
            async with asyncio.timeout(10):
                while not second:
                    await asyncio.sleep(0.02)
            down = [condition("Ready", "False", T1), *healthy()[1:]]
            await blocking(set_conditions, kube, "worker-2", *down)
            raised = await first.signal(is_(f"{uid}/node-not-ready", True))
            async with asyncio.timeout(10):
                while len(second) < 2:
                    await asyncio.sleep(0.02)
            assert second == [AlarmSnapshot(active=()), raised]

            # A relist (what 410 Gone leads to) sends every stream the whole picture.
            mark = first.mark()
            await first.adapter._nodes.relist()
            snapshot = await first.snapshot(since=mark)
            assert snapshot.active == (raised,)
            async with asyncio.timeout(10):
                while len(second) < 3:
                    await asyncio.sleep(0.02)
            assert second[2] == snapshot
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert first.since(mark) == [snapshot]  # nothing changed: no signal besides

    # The stream ends when the adapter closes.
    adapter = KubernetesAdapter.from_kubeconfig(
        ocloud_id=OCLOUD, kubeconfig=kube_clean.kubeconfig, cluster_name=CLUSTER
    )
    try:
        stream = adapter.alarm_signals()
        assert isinstance(await anext(stream), AlarmSnapshot)
        pending = asyncio.ensure_future(anext(stream, None))
        await asyncio.sleep(0.1)
    finally:
        await adapter.aclose()
    assert await asyncio.wait_for(pending, 5) is None


# Warning events, deletion, restart --------------------------------------------------------------


async def test_warning_events_raise_refresh_and_go_with_the_node(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    node = make_node(kube, "worker-3")
    uid = node["metadata"]["uid"]
    key = f"{uid}/event/SystemOOM"
    async with alarms(kube_clean.kubeconfig) as state:
        mark = state.mark()
        event = await blocking(
            warning_event, kube, "worker-3", "SystemOOM", "System OOM encountered, pid: 4242"
        )
        raised = await state.signal(is_(key, True), since=mark)
        assert (raised.definition_key, raised.severity) == ("node-warning-event", SEVERITY_WARNING)
        assert raised.resource_id == m.node_resource_id(node, ctx())
        assert raised.extensions["reason"] == "SystemOOM"
        assert raised.extensions["message"] == "System OOM encountered, pid: 4242"
        assert raised.extensions["count"] == 1

        # A Normal event, or a Warning about something else, raises nothing; a repeat refreshes.
        normal = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "worker-3.normal", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "worker-3", "uid": "worker-3"},
            "reason": "NodeReady",
            "message": "Node worker-3 status is now: NodeReady",
            "type": "Normal",
        }
        await blocking(lambda: ok(kube.post(EVENTS, json=normal)))
        mark = state.mark()
        await blocking(repeat_event, kube, event)
        refreshed = await state.signal(is_(key, True), since=mark)
        assert refreshed.severity == raised.severity
        assert refreshed.extensions["count"] == 2
        assert state.since(mark) == [refreshed]

        # Deleting the node clears all its alarms, the MANUAL one too.
        down = [condition("Ready", "False", T1), *healthy()[1:]]
        await blocking(set_conditions, kube, "worker-3", *down)
        await state.signal(is_(f"{uid}/node-not-ready", True), since=mark)
        mark = state.mark()
        assert (await blocking(kube.delete, f"{NODES}/worker-3")).status_code == 200
        await state.signal(is_(key, False), since=mark)
        await state.signal(is_(f"{uid}/node-not-ready", False), since=mark)
        assert len(state.since(mark)) == 2


async def test_a_restarted_adapter_snapshots_the_same_active_alarms(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    kept = make_node(kube, "worker-4")
    make_node(kube, "worker-5")
    uid = kept["metadata"]["uid"]
    down = [condition("Ready", "False", T1), *healthy()[1:]]
    set_conditions(kube, "worker-4", *down)
    warning_event(kube, "worker-4", "FreeDiskSpaceFailed", "failed to garbage collect")
    expected = {f"{uid}/node-not-ready", f"{uid}/event/FreeDiskSpaceFailed"}

    async with alarms(kube_clean.kubeconfig) as first:
        [before] = first.snapshots
        assert keys(before) == expected
    async with alarms(kube_clean.kubeconfig) as second:
        [after] = second.snapshots
    assert after == before  # same keys, times and details: derived from the cluster only


# RBAC ---------------------------------------------------------------------------------------------


def grant(kube: httpx.Client, role: JSON, binding_name: str) -> None:
    """Create ``role`` (a ClusterRole) and bind it to user netweave-restricted."""
    role.setdefault("metadata", {}).setdefault("labels", {})[OWNED_LABEL] = "true"
    ok(kube.post(f"{RBAC}/clusterroles", json=role))
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
    ok(kube.post(f"{RBAC}/clusterrolebindings", json=binding))


async def eventually_status(server: KubeAPIServer, path: str, status: int) -> None:
    """Wait until RBAC (which the API server caches briefly) answers ``status`` on ``path``."""
    deadline = time.monotonic() + 10
    while True:
        with server.client(server.restricted_token, timeout=10.0) as http:
            got = (await blocking(http.get, path, params={"limit": 1})).status_code
        if got == status:
            return
        assert time.monotonic() < deadline, f"{path}: {got}, not {status}"
        await asyncio.sleep(0.1)


async def test_the_shipped_role_reads_node_events_and_without_it_conditions_still_work(
    kube_clean: KubeAPIServer, kube: httpx.Client
) -> None:
    node = make_node(kube, "worker-6")
    uid = node["metadata"]["uid"]
    warning_event(kube, "worker-6", "Rebooted", "Node worker-6 has been rebooted")
    nodes_only = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "netweave-test-alarms-nodes-only"},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            {"nonResourceURLs": ["/version"], "verbs": ["get"]},
        ],
    }
    grant(kube, nodes_only, "netweave-test-alarms-nodes-only")
    await eventually_status(kube_clean, NODES, 200)
    with kube_clean.client(kube_clean.restricted_token, timeout=10.0) as http:
        assert http.get("/api/v1/events").status_code == 403

    async with alarms(kube_clean.restricted_kubeconfig) as state:
        assert state.adapter.alarms_degraded == "forbidden to list/watch events"
        assert state.adapter.degraded == [
            "forbidden to list/watch storageclasses.storage.k8s.io"
        ]  # the inventory's own report does not mention events
        assert state.items == [AlarmSnapshot(active=())]
        down = [condition("Ready", "False", T1), *healthy()[1:]]
        await blocking(set_conditions, kube, "worker-6", *down)
        await state.signal(is_(f"{uid}/node-not-ready", True))

    shipped = yaml.safe_load(SHIPPED_CLUSTERROLE.read_text())
    shipped["metadata"]["name"] = "netweave-test-alarms-shipped"
    grant(kube, shipped, "netweave-test-alarms-shipped")
    await eventually_status(kube_clean, "/api/v1/events", 200)
    async with alarms(kube_clean.restricted_kubeconfig) as state:
        assert state.adapter.alarms_degraded is None
        assert keys(state.snapshots[0]) == {f"{uid}/node-not-ready", f"{uid}/event/Rebooted"}
