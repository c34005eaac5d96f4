"""Node alarms of the Kubernetes backend: the pure mapping, the tracker, the event reflector.

Recorded nodes (``kubernetes_fixtures/``) with their conditions edited play the cluster;
the tracker gets the same ``(uid, old, new)`` calls the reflectors make.  The reflector's
selector and relist hook run against a scripted ``httpx2.MockTransport``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from netweave.adapters.alarms import (
    SEVERITY_CRITICAL,
    SEVERITY_MAJOR,
    SEVERITY_MINOR,
    SEVERITY_WARNING,
    AlarmSignal,
    AlarmSnapshot,
)
from netweave.adapters.kubernetes import mapping as m
from netweave.adapters.kubernetes.alarms import (
    EVENTS,
    WARNING_NODE_EVENTS,
    NodeAlarmTracker,
    node_condition_alarms,
    warning_event,
)
from netweave.adapters.kubernetes.watching import Backoff, Reflector
from netweave.models.ids import default_ocloud_id

FIXTURES = Path(__file__).parent / "kubernetes_fixtures"
CTX = m.MappingContext(
    ocloud_id=default_ocloud_id("k8s-alarm-unit"), cluster_name="c", api_server_url="unused"
)
NOW = 1_800_000_000.0  # the tracker's clock
CREATED = "2024-09-16T08:13:13Z"  # the recorded node's creationTimestamp
T1 = "2024-09-16T09:00:00Z"
T2 = "2024-09-16T09:30:00Z"
JSON = dict[str, Any]


def at(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def recorded_node() -> JSON:
    node: JSON = json.loads((FIXTURES / "node-kind-worker.json").read_text())
    return node


def with_condition(node: JSON, kind: str, status: str, since: str = T1, **more: str) -> JSON:
    """A copy of ``node`` with condition ``kind`` set (heartbeat and all, as the kubelet does)."""
    changed = copy.deepcopy(node)
    conditions = [c for c in changed["status"]["conditions"] if c["type"] != kind]
    conditions.append(
        {
            "type": kind,
            "status": status,
            "reason": more.get("reason", f"{kind}{status}"),
            "message": more.get("message", f"{kind} is {status}"),
            "lastHeartbeatTime": more.get("heartbeat", since),
            "lastTransitionTime": since,
        }
    )
    changed["status"]["conditions"] = conditions
    return changed


def event(
    name: str,
    *,
    node: str = "kind-worker",
    reason: str = "SystemOOM",
    kind: str = "Node",
    type_: str = "Warning",
    count: int = 1,
    last: str = T1,
    involved_uid: str | None = None,
) -> JSON:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"event-{name}"},
        "involvedObject": {
            "kind": kind,
            "name": node,
            "uid": node if involved_uid is None else involved_uid,
        },
        "reason": reason,
        "message": f"{reason} number {count}",
        "type": type_,
        "count": count,
        "firstTimestamp": T1,
        "lastTimestamp": last,
    }


@pytest.fixture
def tracker() -> NodeAlarmTracker:
    return NodeAlarmTracker(CTX, clock=lambda: NOW)


def shape(signals: list[AlarmSignal]) -> list[tuple[str, str, bool]]:
    """(key without the node uid, definition key, raised) of each signal."""
    return [(s.key.split("/", 1)[1], s.definition_key, s.raised) for s in signals]


# The pure mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("node-*.json")))
def test_recorded_healthy_nodes_raise_nothing(name: str) -> None:
    assert node_condition_alarms(json.loads((FIXTURES / name).read_text())) == {}


def test_node_condition_alarms() -> None:
    node = recorded_node()
    assert node_condition_alarms(with_condition(node, "Ready", "False")) == {
        "node-not-ready": SEVERITY_CRITICAL
    }
    silent = node
    for kind in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
        silent = with_condition(silent, kind, "Unknown")  # what the node controller writes
    assert node_condition_alarms(silent) == {"node-unreachable": SEVERITY_CRITICAL}
    pressed = with_condition(with_condition(node, "DiskPressure", "True"), "PIDPressure", "True")
    assert node_condition_alarms(pressed) == {
        "node-disk-pressure": SEVERITY_MAJOR,
        "node-pid-pressure": SEVERITY_MINOR,
    }
    assert node_condition_alarms({"metadata": {"name": "new"}}) == {}  # no status yet
    assert node_condition_alarms({"status": {"conditions": None}}) == {}


def test_warning_event_parsing() -> None:
    parsed = warning_event(event("e1", count=3, last=T2))
    assert parsed is not None
    assert (parsed.node_name, parsed.node_uid, parsed.reason) == (
        "kind-worker",
        "kind-worker",
        "SystemOOM",
    )
    assert (parsed.count, parsed.time, parsed.message) == (3, at(T2), "SystemOOM number 3")
    assert warning_event(event("e2", type_="Normal")) is None
    assert warning_event(event("e3", kind="Pod")) is None
    assert warning_event(event("e4", node="")) is None
    # events.k8s.io-style series win; then lastTimestamp, eventTime, creationTimestamp
    series = {**event("e5"), "series": {"count": 9, "lastObservedTime": "2024-09-16T09:45:00.5Z"}}
    parsed = warning_event(series)
    assert parsed is not None and (parsed.count, parsed.time) == (9, at(T1) + 45 * 60 + 0.5)
    bare = {
        "type": "Warning",
        "involvedObject": {"kind": "Node", "name": "n"},
        "eventTime": None,
        "metadata": {"creationTimestamp": T2},
    }
    parsed = warning_event(bare)
    assert parsed is not None
    assert (parsed.reason, parsed.count, parsed.time, parsed.node_uid) == ("Unknown", 1, at(T2), "")


# The tracker: conditions --------------------------------------------------------------------


def test_conditions_raise_and_clear_with_the_condition_times(tracker: NodeAlarmTracker) -> None:
    node = recorded_node()
    uid = node["metadata"]["uid"]
    assert tracker.node_changed(uid, None, node) == []
    assert tracker.snapshot() == AlarmSnapshot(active=())

    down = with_condition(node, "Ready", "False", T1, reason="KubeletNotReady")
    [raised] = tracker.node_changed(uid, node, down)
    assert raised == AlarmSignal(
        key=f"{uid}/node-not-ready",
        definition_key="node-not-ready",
        resource_id=m.node_resource_id(node, CTX),
        resource_type_id=m.node_shape_type_id(m.node_shape(node), CTX),
        severity=SEVERITY_CRITICAL,
        raised=True,
        event_time=at(T1),
        extensions={
            "nodeName": "kind-worker",
            "condition": "Ready",
            "status": "False",
            "reason": "KubeletNotReady",
            "message": "Ready is False",
        },
    )
    assert tracker.snapshot() == AlarmSnapshot(active=(raised,))

    # heartbeats, a new message, a label: no alarm change, and the held alarm stays as raised
    beat = with_condition(node, "Ready", "False", T1, heartbeat=T2, message="PLEG is not healthy")
    beat["metadata"]["labels"]["example.com/new"] = "label"
    assert tracker.node_changed(uid, down, beat) == []
    assert tracker.snapshot().active == (raised,)

    # Ready False -> Unknown: the kubelet went silent; a clear and a raise, in key order
    silent = with_condition(beat, "Ready", "Unknown", T2)
    signals = tracker.node_changed(uid, beat, silent)
    assert shape(signals) == [
        ("node-not-ready", "node-not-ready", False),
        ("node-unreachable", "node-unreachable", True),
    ]
    assert [s.event_time for s in signals] == [at(T2), at(T2)]

    back = with_condition(silent, "Ready", "True", "2024-09-16T10:00:00Z")
    [cleared] = tracker.node_changed(uid, silent, back)
    assert (cleared.key, cleared.raised) == (f"{uid}/node-unreachable", False)
    assert cleared.event_time == at("2024-09-16T10:00:00Z")
    assert tracker.snapshot() == AlarmSnapshot(active=())


def test_a_condition_without_times_uses_the_clock(tracker: NodeAlarmTracker) -> None:
    node = recorded_node()
    uid = node["metadata"]["uid"]
    tracker.node_changed(uid, None, node)
    pressed = copy.deepcopy(node)
    pressed["status"]["conditions"].append({"type": "NetworkUnavailable", "status": "True"})
    [raised] = tracker.node_changed(uid, node, pressed)
    assert (raised.definition_key, raised.event_time) == ("node-network-unavailable", NOW)
    [cleared] = tracker.node_changed(uid, pressed, node)  # the condition went away entirely
    assert (cleared.raised, cleared.event_time) == (False, NOW)


# The tracker: Warning events ------------------------------------------------------------------


def test_warning_events_raise_refresh_and_expire_silently(tracker: NodeAlarmTracker) -> None:
    node = recorded_node()
    uid = node["metadata"]["uid"]
    tracker.node_changed(uid, None, node)
    oom = event("oom")
    [raised] = tracker.event_changed("event-oom", None, oom)
    assert raised.key == f"{uid}/event/SystemOOM"
    assert (raised.definition_key, raised.severity, raised.raised) == (
        "node-warning-event",
        SEVERITY_WARNING,
        True,
    )
    assert raised.resource_id == m.node_resource_id(node, CTX)
    assert raised.event_time == at(T1)
    assert raised.extensions == {
        "nodeName": "kind-worker",
        "reason": "SystemOOM",
        "message": "SystemOOM number 1",
        "count": 1,
    }

    # the same event modified without happening again (an annotation, say): nothing
    touched = copy.deepcopy(oom)
    touched["metadata"]["annotations"] = {"seen": "yes"}
    assert tracker.event_changed("event-oom", oom, touched) == []
    # it happens again: a refresh with the new count and time, same key and severity
    again = event("oom", count=2, last=T2)
    [refresh] = tracker.event_changed("event-oom", touched, again)
    assert (refresh.key, refresh.severity, refresh.raised) == (raised.key, raised.severity, True)
    assert (refresh.extensions["count"], refresh.event_time) == (2, at(T2))
    assert tracker.snapshot().active == (refresh,)
    # another event object of the same reason (another source): a refresh of the same alarm
    [second] = tracker.event_changed("event-oom2", None, event("oom2", last=T2))
    assert (second.key, second.extensions["count"]) == (raised.key, 3)
    # another reason: another alarm
    [disk] = tracker.event_changed("event-gc", None, event("gc", reason="ImageGCFailed"))
    assert disk.key == f"{uid}/event/ImageGCFailed"

    # events expire from the API server: MANUAL alarms are not cleared, they leave the set
    assert tracker.event_changed("event-oom", again, None) == []
    assert tracker.event_changed("event-oom2", None, None) == []  # unknown: nothing
    assert tracker.event_changed("event-oom2", event("oom2"), None) == []
    assert [s.key for s in tracker.snapshot().active] == [disk.key]
    # and the same reason later is a new raise
    [fresh] = tracker.event_changed("event-oom3", None, event("oom3", last=T2))
    assert (fresh.key, fresh.extensions["count"]) == (raised.key, 1)


def test_events_and_nodes_in_any_order_and_of_earlier_nodes(tracker: NodeAlarmTracker) -> None:
    node = recorded_node()
    uid = node["metadata"]["uid"]
    # events listed before the node is known raise when it appears
    assert tracker.event_changed("event-early", None, event("early")) == []
    # an event older than the node, or naming another uid, is about an earlier node
    old = event("old", reason="Rebooted", last="2024-09-16T08:00:00Z")
    assert tracker.event_changed("event-old", None, old) == []
    other = event("other", reason="ContainerGCFailed", involved_uid="some-other-uid")
    assert tracker.event_changed("event-other", None, other) == []
    # a Normal event or an event about a pod never counts
    assert tracker.event_changed("event-normal", None, event("normal", type_="Normal")) == []
    assert tracker.event_changed("event-pod", None, event("pod", kind="Pod")) == []
    signals = tracker.node_changed(uid, None, node)
    assert [s.key for s in signals] == [f"{uid}/event/SystemOOM"]
    # an event with the node's real uid counts too (the node controller writes those)
    real = event("real", reason="NodeRebootRequired", involved_uid=uid)
    assert [s.key for s in tracker.event_changed("event-real", None, real)] == [
        f"{uid}/event/NodeRebootRequired"
    ]


def test_a_deleted_node_clears_everything(tracker: NodeAlarmTracker) -> None:
    node = recorded_node()
    uid = node["metadata"]["uid"]
    down = with_condition(with_condition(node, "Ready", "False"), "MemoryPressure", "True")
    tracker.node_changed(uid, None, down)
    tracker.event_changed("event-oom", None, event("oom"))
    assert len(tracker.snapshot().active) == 3
    signals = tracker.node_changed(uid, down, None)
    assert shape(signals) == [
        ("event/SystemOOM", "node-warning-event", False),
        ("node-memory-pressure", "node-memory-pressure", False),
        ("node-not-ready", "node-not-ready", False),
    ]
    assert {s.event_time for s in signals} == {NOW}
    assert tracker.snapshot() == AlarmSnapshot(active=())
    assert tracker.node_changed(uid, None, None) == []  # deleted twice (a relist): nothing
    # the event is still in the API server; the next node of that name is a new node
    again = copy.deepcopy(node)
    again["metadata"]["uid"] = "new-uid"
    again["metadata"]["creationTimestamp"] = T2
    assert tracker.node_changed("new-uid", None, again) == []


def test_the_snapshot_lists_every_node_in_a_stable_order(tracker: NodeAlarmTracker) -> None:
    base = recorded_node()
    for index in (3, 1, 2):
        node = copy.deepcopy(base)
        node["metadata"].update(name=f"w-{index}", uid=f"uid-{index}")
        pressed = with_condition(node, "DiskPressure", "True")
        tracker.node_changed(f"uid-{index}", None, pressed)
        tracker.node_changed(f"uid-{index}", pressed, with_condition(pressed, "Ready", "False"))
    assert [s.key for s in tracker.snapshot().active] == [
        f"uid-{i}/{key}" for i in (1, 2, 3) for key in ("node-disk-pressure", "node-not-ready")
    ]


# The event reflector: selector and relist hook ------------------------------------------------


def listing(items: list[JSON], version: str) -> httpx.Response:
    body = {"kind": "EventList", "metadata": {"resourceVersion": version}, "items": items}
    return httpx.Response(200, json=body)


def gone() -> httpx.Response:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    return httpx.Response(200, content=orjson.dumps({"type": "ERROR", "object": status}) + b"\n")


async def test_the_event_reflector_selects_warnings_about_nodes_and_reports_relists() -> None:
    requests: list[httpx.Request] = []
    answers = {"list": [listing([event("a")], "10"), listing([], "20")], "watch": [gone()]}

    async def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        script = answers["watch" if request.url.params.get("watch") else "list"]
        if not script:
            await asyncio.Event().wait()  # an idle watch, until cancelled
        return script.pop(0)

    relists: list[int] = []
    changes: list[tuple[str, bool]] = []
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handle), base_url="https://kube.test"
    ) as http:
        reflector = Reflector(
            http,
            EVENTS,
            resource="events",
            selector=WARNING_NODE_EVENTS,
            on_change=lambda uid, _old, new: changes.append((uid, new is not None)),
            on_relist=lambda: relists.append(len(changes)),
            backoff=Backoff(initial=0.001, maximum=0.002),
        )
        task = asyncio.create_task(reflector.run())
        try:
            async with asyncio.timeout(5):
                while len(relists) < 2 or len(requests) < 4:
                    await asyncio.sleep(0.001)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    # the hook runs after each list has reported its difference: the first, then after 410
    assert relists == [1, 2]
    assert changes == [("event-a", True), ("event-a", False)]
    selector = "involvedObject.kind=Node,type=Warning"
    assert [r.url.path for r in requests] == [EVENTS] * 4
    assert all(r.url.params["fieldSelector"] == selector for r in requests)
    assert [bool(r.url.params.get("watch")) for r in requests] == [False, True, False, True]
