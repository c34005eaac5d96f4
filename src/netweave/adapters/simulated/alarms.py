"""The alarms of the simulated O-Cloud: what its nodes' conditions and Warning events raise.

:class:`NodeAlarms` holds the active alarms of every node.  Condition alarms are derived
from each node's ``extensions["conditions"]`` with the shared rules of
:mod:`netweave.adapters.alarm_catalog` (so the simulated O-Cloud and a real cluster raise
the same alarm for the same condition), recomputed whenever the state replaces, adds or
drops a node; only a changed active set is a signal, so a node change that leaves its
conditions alone (labels, a cordon) signals nothing.  Warning events have no inventory
counterpart: they live here, one per node and reason, until the node goes or a caller
clears one; a repeated event refreshes its alarm (see the catalogue's module docstring).

The simulated O-Cloud starts with two active alarms, so a fresh gateway has something
to show: ``node-disk-pressure`` on ``dal-storage-03`` (its DiskPressure condition is
True in the initial topology, see :data:`INITIAL_CONDITIONS`) and a SystemOOM
``node-warning-event`` on ``tyo-core-02`` (:data:`INITIAL_WARNINGS`).  This module does no
I/O; event times come from ``clock``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from netweave.adapters.alarm_catalog import (
    DEFINITION_BY_KEY,
    NODE_WARNING_EVENT,
    condition_alarm_key,
    condition_alarms,
    diff_alarms,
    event_alarm_key,
)
from netweave.adapters.alarms import AlarmSignal, AlarmSnapshot
from netweave.models.inventory import Resource

__all__ = [
    "INITIAL_CONDITIONS",
    "INITIAL_WARNINGS",
    "WARNING_REASONS",
    "NodeAlarms",
    "WarningRecord",
]

#: (node key, condition type) True in the initial topology
INITIAL_CONDITIONS: Final = (("dal-storage-03", "DiskPressure"),)
#: (node key, reason, message) of the Warning events active at start
INITIAL_WARNINGS: Final = (
    (
        "tyo-core-02",
        "SystemOOM",
        "System OOM encountered, victim process: upf-dataplane, pid: 48213",
    ),
)
#: reasons and message templates of the Warning events churn reports, the kubelet's usual
#: complaints (``{node}`` the hostname; ``{process}``, ``{n}``, ``{boot}`` drawn by churn)
WARNING_REASONS: Final = (
    ("SystemOOM", "System OOM encountered, victim process: {process}, pid: {n}"),
    (
        "FreeDiskSpaceFailed",
        "Failed to garbage collect required amount of images. Attempted to free {n} bytes, "
        "but only found 0 bytes eligible to free.",
    ),
    (
        "ImageGCFailed",
        "failed to garbage collect required amount of images. Wanted to free {n} bytes, "
        "but freed 0 bytes",
    ),
    ("Rebooted", "Node {node} has been rebooted, boot id: {boot}"),
    (
        "ContainerGCFailed",
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded ({n} ms)",
    ),
)


@dataclass(frozen=True, slots=True)
class WarningRecord:
    """A Warning event about a node: its latest message and how often it was seen."""

    reason: str
    message: str
    count: int
    last_seen: float


class NodeAlarms:
    """The active alarms of the simulated nodes; each change returns its signals."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._nodes: dict[str, Resource] = {}
        self._active: dict[str, dict[str, AlarmSignal]] = {}  # node id -> key -> signal
        self._warnings: dict[str, dict[str, WarningRecord]] = {}  # node id -> reason -> it

    def node_changed(self, prior: Resource | None, post: Resource | None) -> list[AlarmSignal]:
        """A node was added (no ``prior``), replaced, or dropped (no ``post``)."""
        now = self._clock()
        if post is None:
            if prior is None:
                return []
            self._nodes.pop(prior.resource_id, None)
            self._warnings.pop(prior.resource_id, None)
            held = self._active.pop(prior.resource_id, {})
            return diff_alarms(held, {}, lambda _: now)
        self._nodes[post.resource_id] = post
        return self._refresh(post.resource_id, now)

    def warn(self, node_id: str, reason: str, message: str) -> list[AlarmSignal]:
        """Record a Warning event about a node the alarms know: a raise, or a refresh."""
        node = self._nodes[node_id]
        now = self._clock()
        seen = self._warnings.setdefault(node_id, {})
        previous = seen.get(reason)
        seen[reason] = WarningRecord(
            reason=reason,
            message=message,
            count=1 if previous is None else previous.count + 1,
            last_seen=now,
        )
        signal = self._warning_signal(node, seen[reason])
        self._active.setdefault(node_id, {})[signal.key] = signal
        return [signal]  # a new alarm, or the refresh of the one already active

    def clear_warning(self, node_id: str, reason: str) -> list[AlarmSignal]:
        """Forget a node's Warning event of ``reason``: its clear, none if there was none."""
        if self._warnings.get(node_id, {}).pop(reason, None) is None:
            return []
        return self._refresh(node_id, self._clock())

    def snapshot(self) -> AlarmSnapshot:
        """Every active alarm, in node order then key order."""
        return AlarmSnapshot(
            active=tuple(
                signal for held in self._active.values() for _, signal in sorted(held.items())
            )
        )

    def _refresh(self, node_id: str, now: float) -> list[AlarmSignal]:
        """Recompute one node's alarms; the signals of what changed."""
        node = self._nodes[node_id]
        held = self._active.get(node_id, {})
        fresh: dict[str, AlarmSignal] = {}
        name = str(node.extensions.get("hostname", node_id))
        conditions = node.extensions.get("conditions", [])
        for definition_key, alarm in condition_alarms(conditions).items():
            key = condition_alarm_key(node_id, definition_key)
            kept = held.get(key)
            fresh[key] = (
                kept
                if kept is not None and kept.severity == alarm.severity
                else AlarmSignal(
                    key=key,
                    definition_key=definition_key,
                    resource_id=node_id,
                    resource_type_id=node.resource_type_id,
                    severity=alarm.severity,
                    raised=True,
                    event_time=now,
                    extensions=alarm.extensions(name),
                )
            )
        for record in self._warnings.get(node_id, {}).values():
            signal = self._warning_signal(node, record)
            fresh[signal.key] = held.get(signal.key, signal)
        self._active[node_id] = fresh
        return diff_alarms(held, fresh, lambda _: now)

    def _warning_signal(self, node: Resource, record: WarningRecord) -> AlarmSignal:
        return AlarmSignal(
            key=event_alarm_key(node.resource_id, record.reason),
            definition_key=NODE_WARNING_EVENT,
            resource_id=node.resource_id,
            resource_type_id=node.resource_type_id,
            severity=DEFINITION_BY_KEY[NODE_WARNING_EVENT].severity,
            raised=True,
            event_time=record.last_seen,
            extensions={
                "nodeName": str(node.extensions.get("hostname", node.resource_id)),
                "reason": record.reason,
                "message": record.message,
                "count": record.count,
            },
        )
