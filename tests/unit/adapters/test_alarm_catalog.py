"""The shared alarm catalogue: definitions, dictionaries, the condition rules, the diff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from netweave.adapters.alarm_catalog import (
    CONDITION_OF_DEFINITION,
    DEFINITION_BY_KEY,
    NODE_DEFINITIONS,
    condition_alarm_key,
    condition_alarms,
    diff_alarms,
    empty_alarm_dictionary,
    event_alarm_key,
    node_alarm_dictionary,
    parse_time,
)
from netweave.adapters.alarms import (
    SEVERITY_CRITICAL,
    SEVERITY_MAJOR,
    SEVERITY_MINOR,
    SEVERITY_WARNING,
    AlarmSignal,
)

EXPECTED = {
    "node-not-ready": (SEVERITY_CRITICAL, "AUTOMATIC"),
    "node-unreachable": (SEVERITY_CRITICAL, "AUTOMATIC"),
    "node-memory-pressure": (SEVERITY_MAJOR, "AUTOMATIC"),
    "node-disk-pressure": (SEVERITY_MAJOR, "AUTOMATIC"),
    "node-pid-pressure": (SEVERITY_MINOR, "AUTOMATIC"),
    "node-network-unavailable": (SEVERITY_CRITICAL, "AUTOMATIC"),
    "node-warning-event": (SEVERITY_WARNING, "MANUAL"),
}


def test_the_catalogue_has_the_seven_node_definitions() -> None:
    assert {d.key: (d.severity, d.clearing_type) for d in NODE_DEFINITIONS} == EXPECTED
    assert len(NODE_DEFINITIONS) == len(DEFINITION_BY_KEY) == 7
    for definition in NODE_DEFINITIONS:
        for text in (
            definition.name,
            definition.description,
            definition.proposed_repair_actions,
            definition.probable_cause,
            definition.probable_cause_description,
        ):
            assert text.strip() == text and len(text) >= 10, (definition.key, text)
    # a probable cause's id derives from its name: no two definitions share one by accident
    assert len({d.probable_cause for d in NODE_DEFINITIONS}) == 7
    assert len({d.name for d in NODE_DEFINITIONS}) == 7


def test_every_automatic_definition_has_its_condition() -> None:
    automatic = {d.key for d in NODE_DEFINITIONS if d.clearing_type == "AUTOMATIC"}
    assert set(CONDITION_OF_DEFINITION) == automatic
    assert CONDITION_OF_DEFINITION["node-not-ready"] == "Ready"
    assert CONDITION_OF_DEFINITION["node-network-unavailable"] == "NetworkUnavailable"


def test_dictionaries() -> None:
    node = node_alarm_dictionary("type-1")
    assert node.resource_type_id == "type-1"
    assert node.definitions == NODE_DEFINITIONS
    assert (node.vendor, node.version) == ("netweave", "1.0")
    empty = empty_alarm_dictionary("type-2")
    assert (empty.resource_type_id, tuple(empty.definitions)) == ("type-2", ())


def test_keys() -> None:
    assert condition_alarm_key("uid-1", "node-not-ready") == "uid-1/node-not-ready"
    assert event_alarm_key("uid-1", "SystemOOM") == "uid-1/event/SystemOOM"


def cond(kind: str, status: str | None, **more: str) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, **more}
    if status is not None:
        condition["status"] = status
    return condition


HEALTHY = [
    cond("Ready", "True"),
    cond("MemoryPressure", "False"),
    cond("DiskPressure", "False"),
    cond("PIDPressure", "False"),
    cond("NetworkUnavailable", "False"),
]


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (cond("Ready", "True"), {}),
        (cond("Ready", "False"), {"node-not-ready": SEVERITY_CRITICAL}),
        (cond("Ready", "Unknown"), {"node-unreachable": SEVERITY_CRITICAL}),
        (cond("Ready", None), {"node-unreachable": SEVERITY_CRITICAL}),  # no status: Unknown
        (cond("MemoryPressure", "True"), {"node-memory-pressure": SEVERITY_MAJOR}),
        (cond("MemoryPressure", "Unknown"), {}),
        (cond("DiskPressure", "True"), {"node-disk-pressure": SEVERITY_MAJOR}),
        (cond("PIDPressure", "True"), {"node-pid-pressure": SEVERITY_MINOR}),
        (cond("NetworkUnavailable", "True"), {"node-network-unavailable": SEVERITY_CRITICAL}),
        (cond("NetworkUnavailable", "Unknown"), {}),
        (cond("SomeVendorCondition", "True"), {}),  # conditions outside the catalogue
    ],
)
def test_one_condition_changed(changed: dict[str, Any], expected: dict[str, int]) -> None:
    conditions = [c for c in HEALTHY if c["type"] != changed["type"]] + [changed]
    alarms = condition_alarms(conditions)
    assert {key: alarm.severity for key, alarm in alarms.items()} == expected
    for key, alarm in alarms.items():
        assert alarm.definition_key == key
        assert alarm.condition_type == changed["type"]


def test_conditions_carry_their_details_and_several_raise_at_once() -> None:
    conditions = [
        cond(
            "Ready",
            "False",
            reason="KubeletNotReady",
            message="PLEG is not healthy",
            lastTransitionTime="2024-05-01T10:00:00Z",
            lastHeartbeatTime="2024-05-01T10:09:00Z",
        ),
        cond("DiskPressure", "True", reason="KubeletHasDiskPressure"),
        cond("PIDPressure", "True"),
    ]
    alarms = condition_alarms(conditions)
    assert set(alarms) == {"node-not-ready", "node-disk-pressure", "node-pid-pressure"}
    ready = alarms["node-not-ready"]
    assert (ready.status, ready.reason, ready.message, ready.since) == (
        "False",
        "KubeletNotReady",
        "PLEG is not healthy",
        "2024-05-01T10:00:00Z",
    )
    assert ready.extensions("w-1") == {
        "nodeName": "w-1",
        "condition": "Ready",
        "status": "False",
        "reason": "KubeletNotReady",
        "message": "PLEG is not healthy",
    }
    assert alarms["node-pid-pressure"].since == ""


def test_heartbeats_do_not_matter_and_odd_entries_are_ignored() -> None:
    one = [cond("Ready", "False", lastHeartbeatTime="2024-05-01T10:00:00Z")]
    two = [cond("Ready", "False", lastHeartbeatTime="2024-05-01T10:05:00Z")]
    assert condition_alarms(one) == condition_alarms(two)
    assert condition_alarms([]) == {}  # a node whose kubelet never reported
    assert condition_alarms(["Ready", {"status": "False"}, {"type": ""}]) == {}  # type: ignore[list-item]
    # the last entry of a type wins, as when a JSON object repeats a key
    assert set(condition_alarms([cond("Ready", "False"), cond("Ready", "True")])) == set()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()),
        ("2024-05-01T10:00:00.250000Z", datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp() + 0.25),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()),
        ("2024-05-01T10:00:00", None),  # no zone: no guess
        ("yesterday", None),
        ("", None),
        (None, None),
        (1714557600, None),
    ],
)
def test_parse_time(text: object, expected: float | None) -> None:
    assert parse_time(text) == expected


def signal(key: str, severity: int = SEVERITY_MAJOR, time: float = 1.0) -> AlarmSignal:
    return AlarmSignal(
        key=key,
        definition_key=key.split("/")[-1],
        resource_id="r",
        resource_type_id="t",
        severity=severity,
        raised=True,
        event_time=time,
        extensions={"message": f"at {time}"},
    )


def test_diff_alarms() -> None:
    held = {
        "n/kept": signal("n/kept"),
        "n/gone": signal("n/gone"),
        "n/worse": signal("n/worse", SEVERITY_MAJOR),
    }
    fresh = {
        "n/kept": signal("n/kept", time=5.0),  # only details changed: no signal
        "n/worse": signal("n/worse", SEVERITY_CRITICAL, time=5.0),
        "n/added": signal("n/added", time=5.0),
    }
    signals = diff_alarms(held, fresh, lambda held_signal: held_signal.event_time + 6.0)
    assert [(s.key, s.raised, s.severity, s.event_time) for s in signals] == [
        ("n/added", True, SEVERITY_MAJOR, 5.0),
        ("n/gone", False, SEVERITY_MAJOR, 7.0),
        ("n/worse", True, SEVERITY_CRITICAL, 5.0),
    ]
    assert signals[1].extensions == held["n/gone"].extensions
    assert diff_alarms(held, held, lambda _: 0.0) == []
