"""The alarms netweave's backends raise, and the rules that turn node state into them.

Both the simulated O-Cloud and the Kubernetes backend describe nodes the way Kubernetes
does (``status.conditions``, Warning events), so they share one catalogue and one pure
mapping, and an SMO sees the same alarm dictionaries whichever backend runs:

* ``node-not-ready`` (CRITICAL, AUTOMATIC): condition ``Ready`` is ``False``;
* ``node-unreachable`` (CRITICAL, AUTOMATIC): ``Ready`` is ``Unknown``;
* ``node-memory-pressure`` (MAJOR, AUTOMATIC): ``MemoryPressure`` is ``True``;
* ``node-disk-pressure`` (MAJOR, AUTOMATIC): ``DiskPressure`` is ``True``;
* ``node-pid-pressure`` (MINOR, AUTOMATIC): ``PIDPressure`` is ``True``;
* ``node-network-unavailable`` (CRITICAL, AUTOMATIC): ``NetworkUnavailable`` is ``True``;
* ``node-warning-event`` (WARNING, MANUAL): a Warning event names the node.  Nothing
  "recovers" an event, so an operator clears the alarm; a repeated event refreshes it.

Every node resource type gets the dictionary of these seven definitions.  Every other
resource type (storage classes, and the simulated O-Cloud's node parts: NICs, GPUs, FEC
accelerators) gets an *empty* dictionary: neither backend observes anything that fails
for them (a storage class's provisioning failures are Warning events on
PersistentVolumeClaims, which netweave does not watch), and a definition nothing can
raise would only mislead an SMO that builds its fault handling from the dictionaries.

Alarm keys (:attr:`AlarmSignal.key`) are ``<node key>/<definition key>`` for conditions
and ``<node key>/event/<reason>`` for Warning events (one alarm per node and reason),
where the node key is the Kubernetes uid or the simulated node's resource id: stable
while the alarm is active and across restarts.

A repeated Warning event is signalled as a *refresh*: an :class:`AlarmSignal` with
``raised=True``, the key of an alarm already active and the same severity, carrying the
new event time and count.  It is not a new alarm (nor a severity change); it re-raises
the alarm if an operator cleared it meanwhile.  Condition alarms are never refreshed:
their signals are raises, severity changes and clears only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from netweave.adapters.alarms import (
    SEVERITY_CRITICAL,
    SEVERITY_MAJOR,
    SEVERITY_MINOR,
    SEVERITY_WARNING,
    AlarmDefinitionSpec,
    AlarmDictionarySpec,
    AlarmSignal,
)

__all__ = [
    "CONDITION_OF_DEFINITION",
    "DEFINITION_BY_KEY",
    "DICTIONARY_VENDOR",
    "DICTIONARY_VERSION",
    "NODE_DEFINITIONS",
    "NODE_DISK_PRESSURE",
    "NODE_MEMORY_PRESSURE",
    "NODE_NETWORK_UNAVAILABLE",
    "NODE_NOT_READY",
    "NODE_PID_PRESSURE",
    "NODE_UNREACHABLE",
    "NODE_WARNING_EVENT",
    "ConditionAlarm",
    "condition_alarm_key",
    "condition_alarms",
    "diff_alarms",
    "empty_alarm_dictionary",
    "event_alarm_key",
    "node_alarm_dictionary",
    "parse_time",
]

NODE_NOT_READY: Final = "node-not-ready"
NODE_UNREACHABLE: Final = "node-unreachable"
NODE_MEMORY_PRESSURE: Final = "node-memory-pressure"
NODE_DISK_PRESSURE: Final = "node-disk-pressure"
NODE_PID_PRESSURE: Final = "node-pid-pressure"
NODE_NETWORK_UNAVAILABLE: Final = "node-network-unavailable"
NODE_WARNING_EVENT: Final = "node-warning-event"

DICTIONARY_VENDOR: Final = "netweave"
DICTIONARY_VERSION: Final = "1.0"

NODE_DEFINITIONS: Final[tuple[AlarmDefinitionSpec, ...]] = (
    AlarmDefinitionSpec(
        key=NODE_NOT_READY,
        name="Node not ready",
        description=(
            "The node's kubelet reports the node is not ready (condition Ready=False): "
            "no new workload is scheduled on it and its pods are evicted after their "
            "not-ready toleration (5 minutes by default)."
        ),
        proposed_repair_actions=(
            "Read the Ready condition's message (kubectl describe node) for the failing "
            "component. Check the kubelet and the container runtime on the node "
            "(systemctl status kubelet containerd; journalctl -u kubelet) and the CNI "
            "plugin's pod on the node. If the node does not recover, cordon and drain it "
            "and repair or replace the server."
        ),
        clearing_type="AUTOMATIC",
        severity=SEVERITY_CRITICAL,
        probable_cause="Kubelet reports node not ready",
        probable_cause_description=(
            "The kubelet runs but reports a failure that keeps the node from running pods: "
            "container runtime down, network plugin not initialised, PLEG not healthy."
        ),
    ),
    AlarmDefinitionSpec(
        key=NODE_UNREACHABLE,
        name="Node unreachable",
        description=(
            "The control plane has not heard from the node's kubelet within the node "
            "monitor grace period (condition Ready=Unknown): the node is powered off, "
            "isolated from the control plane, or its kubelet has stopped."
        ),
        proposed_repair_actions=(
            "Check the server's power state and health through its BMC (Redfish), its "
            "management network path to the control plane, and the kubelet service. Once "
            "the kubelet reaches the API server again the alarm clears. If the node is "
            "lost, drain and retire it: its pods are evicted after their unreachable "
            "toleration (5 minutes by default)."
        ),
        clearing_type="AUTOMATIC",
        severity=SEVERITY_CRITICAL,
        probable_cause="Node status unknown",
        probable_cause_description=(
            "The kubelet stopped posting node status: loss of power, of network "
            "connectivity to the control plane, or of the kubelet process."
        ),
    ),
    AlarmDefinitionSpec(
        key=NODE_MEMORY_PRESSURE,
        name="Node memory pressure",
        description=(
            "Available memory on the node is below the kubelet's eviction threshold "
            "(condition MemoryPressure=True): the kubelet evicts pods to reclaim memory "
            "and no new BestEffort pod is scheduled on the node."
        ),
        proposed_repair_actions=(
            "Find the pods using the most memory on the node (kubectl top pods "
            "--all-namespaces --sort-by=memory, filtered by node) and set or lower their "
            "memory limits, move them to other nodes, or add memory or nodes to the pool."
        ),
        clearing_type="AUTOMATIC",
        severity=SEVERITY_MAJOR,
        probable_cause="Insufficient memory",
        probable_cause_description=(
            "Workloads on the node use more memory than the node can give them above the "
            "kubelet's memory.available eviction threshold."
        ),
    ),
    AlarmDefinitionSpec(
        key=NODE_DISK_PRESSURE,
        name="Node disk pressure",
        description=(
            "Free space or inodes on the node's root or image file system are below the "
            "kubelet's eviction thresholds (condition DiskPressure=True): the kubelet "
            "garbage-collects images and evicts pods, and no new pod is scheduled there."
        ),
        proposed_repair_actions=(
            "Free space on the node: prune unused container images (crictl rmi --prune), "
            "remove old logs and large emptyDir volumes, and check which pods write the "
            "most ephemeral storage. Grow the file system if the load is legitimate."
        ),
        clearing_type="AUTOMATIC",
        severity=SEVERITY_MAJOR,
        probable_cause="Disk pressure",
        probable_cause_description=(
            "The nodefs or imagefs free space or inodes fell below the kubelet's eviction "
            "thresholds."
        ),
    ),
    AlarmDefinitionSpec(
        key=NODE_PID_PRESSURE,
        name="Node PID pressure",
        description=(
            "The node is running out of process ids (condition PIDPressure=True): new "
            "processes may fail to start and the kubelet evicts pods."
        ),
        proposed_repair_actions=(
            "Find the container that creates processes or threads without bound (count "
            "threads per container on the node), restart or fix it, and set a pod PID "
            "limit (the kubelet's podPidsLimit) so one workload cannot exhaust the node."
        ),
        clearing_type="AUTOMATIC",
        severity=SEVERITY_MINOR,
        probable_cause="Process id exhaustion",
        probable_cause_description=(
            "The processes on the node use nearly all process ids the kernel allows "
            "(kernel.pid_max), above the kubelet's pid.available eviction threshold."
        ),
    ),
    AlarmDefinitionSpec(
        key=NODE_NETWORK_UNAVAILABLE,
        name="Node network unavailable",
        description=(
            "The node's pod network is not configured (condition NetworkUnavailable="
            "True): pods on the node cannot reach the rest of the cluster."
        ),
        proposed_repair_actions=(
            "Check the network plugin on the node (its DaemonSet pod, its logs and its "
            "configuration in /etc/cni/net.d) and the node's routes; for cloud routes, "
            "the cloud controller manager's route controller."
        ),
        clearing_type="AUTOMATIC",
        severity=SEVERITY_CRITICAL,
        probable_cause="Pod network not configured",
        probable_cause_description=(
            "The network plugin or the route controller has not set up the node's pod "
            "network, or has reported it down."
        ),
    ),
    AlarmDefinitionSpec(
        key=NODE_WARNING_EVENT,
        name="Node warning event",
        description=(
            "A component (the kubelet, the node controller, an agent) reported a Warning "
            "event about the node, such as SystemOOM, Rebooted, FreeDiskSpaceFailed or "
            "ImageGCFailed. One alarm per node and event reason; a repeated event "
            "refreshes it."
        ),
        proposed_repair_actions=(
            "Read the event (kubectl get events --all-namespaces --field-selector "
            "involvedObject.kind=Node,involvedObject.name=<node>,type=Warning), fix the "
            "cause it names, then clear the alarm: an event does not recover by itself."
        ),
        clearing_type="MANUAL",
        severity=SEVERITY_WARNING,
        probable_cause="Kubernetes Warning event",
        probable_cause_description=(
            "A Warning event's reason and message name the cause; the alarm's extensions "
            "carry both."
        ),
    ),
)

DEFINITION_BY_KEY: Final[Mapping[str, AlarmDefinitionSpec]] = {
    definition.key: definition for definition in NODE_DEFINITIONS
}

#: (condition type, status) -> the definition raised while the condition has that status
_RULES: Final[Mapping[tuple[str, str], str]] = {
    ("Ready", "False"): NODE_NOT_READY,
    ("Ready", "Unknown"): NODE_UNREACHABLE,
    ("MemoryPressure", "True"): NODE_MEMORY_PRESSURE,
    ("DiskPressure", "True"): NODE_DISK_PRESSURE,
    ("PIDPressure", "True"): NODE_PID_PRESSURE,
    ("NetworkUnavailable", "True"): NODE_NETWORK_UNAVAILABLE,
}

#: definition key -> the condition type that raises it
CONDITION_OF_DEFINITION: Final[Mapping[str, str]] = {
    definition: condition for (condition, _), definition in _RULES.items()
}


def node_alarm_dictionary(resource_type_id: str) -> AlarmDictionarySpec:
    """The dictionary of a node resource type: every definition of the catalogue."""
    return AlarmDictionarySpec(
        resource_type_id=resource_type_id,
        definitions=NODE_DEFINITIONS,
        vendor=DICTIONARY_VENDOR,
        version=DICTIONARY_VERSION,
    )


def empty_alarm_dictionary(resource_type_id: str) -> AlarmDictionarySpec:
    """The dictionary of a resource type nothing raises alarms for (see the module doc)."""
    return AlarmDictionarySpec(
        resource_type_id=resource_type_id,
        definitions=(),
        vendor=DICTIONARY_VENDOR,
        version=DICTIONARY_VERSION,
    )


def condition_alarm_key(node_key: str, definition_key: str) -> str:
    return f"{node_key}/{definition_key}"


def event_alarm_key(node_key: str, reason: str) -> str:
    return f"{node_key}/event/{reason}"


@dataclass(frozen=True, slots=True)
class ConditionAlarm:
    """An alarm a node condition raises, with the condition that raised it."""

    definition_key: str
    severity: int
    condition_type: str
    status: str
    reason: str
    message: str
    since: str  #: the condition's ``lastTransitionTime`` ("" when absent)

    def extensions(self, node_name: str) -> dict[str, Any]:
        """What an SMO needs to act, next to the definition: the node and the condition."""
        return {
            "nodeName": node_name,
            "condition": self.condition_type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        }


def condition_alarms(conditions: Iterable[Mapping[str, Any]]) -> dict[str, ConditionAlarm]:
    """The alarms a node's ``status.conditions`` raise now, by definition key.

    Pure: the same conditions always give the same alarms; heartbeat and transition times
    do not change which alarms are active.  A condition without a status counts as
    ``Unknown`` (as Kubernetes reads it); a missing condition raises nothing (a node whose
    kubelet never reported has no Ready condition yet).  When a type appears twice, the
    last entry wins.
    """
    by_type: dict[str, Mapping[str, Any]] = {}
    for condition in conditions:
        if isinstance(condition, Mapping) and condition.get("type"):
            by_type[str(condition["type"])] = condition
    alarms: dict[str, ConditionAlarm] = {}
    for condition_type, condition in by_type.items():
        status = str(condition.get("status") or "Unknown")
        definition_key = _RULES.get((condition_type, status))
        if definition_key is None:
            continue
        alarms[definition_key] = ConditionAlarm(
            definition_key=definition_key,
            severity=DEFINITION_BY_KEY[definition_key].severity,
            condition_type=condition_type,
            status=status,
            reason=str(condition.get("reason") or ""),
            message=str(condition.get("message") or ""),
            since=str(condition.get("lastTransitionTime") or ""),
        )
    return alarms


def parse_time(value: object) -> float | None:
    """Epoch seconds of a Kubernetes timestamp (RFC 3339, ``Z`` or offset); None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # Kubernetes always writes UTC with a zone; anything else is a guess
    return parsed.timestamp()


def diff_alarms(
    held: Mapping[str, AlarmSignal],
    fresh: Mapping[str, AlarmSignal],
    clear_time: Callable[[AlarmSignal], float],
) -> list[AlarmSignal]:
    """The signals that take one node's active alarms from ``held`` to ``fresh``.

    A key only in ``fresh`` is raised; a key in both is signalled again only when its
    severity changed; a key only in ``held`` is cleared at ``clear_time(held signal)``.
    Anything else (a message or a heartbeat that changed) is no alarm change.  Signals
    come in key order, so the same change always reads the same.
    """
    signals: list[AlarmSignal] = []
    for key in sorted(held.keys() | fresh.keys()):
        before, after = held.get(key), fresh.get(key)
        if after is not None and (before is None or before.severity != after.severity):
            signals.append(after)
        elif after is None and before is not None:
            signals.append(dataclasses.replace(before, raised=False, event_time=clear_time(before)))
    return signals
