"""Alarms of a Kubernetes cluster's nodes: their conditions and the Warning events about them.

Pure bookkeeping, no I/O: the adapter feeds :class:`NodeAlarmTracker` the raw node and
event objects its reflectors report (``on_change(uid, old, new)``) and publishes the
:class:`~netweave.adapters.alarms.AlarmSignal` list each call returns.

* **Conditions.**  A node's active condition alarms are
  :func:`~netweave.adapters.alarm_catalog.condition_alarms` of its ``status.conditions``
  (Ready False / Unknown, the pressures, NetworkUnavailable).  Only a change of that set
  (a raise, a severity change, a clear) is a signal: heartbeats, new messages, label or
  capacity changes are not.  A raise carries the condition's ``lastTransitionTime`` as
  its event time and a clear the recovered condition's, so a restarted gateway sees the
  same times again.
* **Warning events** (``core/v1`` Events, ``involvedObject.kind=Node,type=Warning``) raise
  one ``node-warning-event`` alarm per node and reason, keyed ``<node uid>/event/<reason>``.
  Events name nodes by name; the kubelet even puts the node name in
  ``involvedObject.uid``.  An event older than the node (its ``creationTimestamp``), or
  carrying another real uid, belongs to an earlier node of that name and is ignored.  A
  new event or a higher ``count`` of a known one is a *refresh*: a raised signal with the
  same key and severity.  The alarm's clearing type is MANUAL, so an event that expires
  from the API server (``--event-ttl``, one hour by default) clears nothing: the alarm
  only leaves the tracker's set (and so later snapshots), and the operator clears it.
* **Deletion.**  A deleted node clears all its alarms, events included: the resource is
  gone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from netweave.adapters.alarm_catalog import (
    CONDITION_OF_DEFINITION,
    DEFINITION_BY_KEY,
    NODE_WARNING_EVENT,
    condition_alarm_key,
    condition_alarms,
    event_alarm_key,
    parse_time,
)
from netweave.adapters.alarms import AlarmSignal, AlarmSnapshot
from netweave.adapters.kubernetes import mapping as m

__all__ = [
    "EVENTS",
    "WARNING_NODE_EVENTS",
    "NodeAlarmTracker",
    "WarningEvent",
    "node_condition_alarms",
    "warning_event",
]

EVENTS: Final = "/api/v1/events"
#: the list/watch selector of the events that raise alarms (both fields are indexed)
WARNING_NODE_EVENTS: Final = {"fieldSelector": "involvedObject.kind=Node,type=Warning"}

JsonMap = dict[str, Any]


def node_condition_alarms(node: Mapping[str, Any]) -> dict[str, int]:
    """The condition alarms a node raises now: definition key -> severity."""
    status = node.get("status") or {}
    conditions = status.get("conditions") or []
    return {key: alarm.severity for key, alarm in condition_alarms(conditions).items()}


@dataclass(frozen=True, slots=True)
class WarningEvent:
    """What the tracker needs of one Warning event about a node."""

    node_name: str
    node_uid: str  #: ``involvedObject.uid``: the node's uid, its name (kubelet), or ""
    reason: str
    message: str
    count: int
    time: float | None  #: when it last happened (epoch seconds), None if it says nothing


def warning_event(event: Mapping[str, Any]) -> WarningEvent | None:
    """The Warning event about a node that ``event`` is, or None if it is something else.

    The time is the latest the event states: ``series.lastObservedTime``, then
    ``lastTimestamp``, ``eventTime`` and ``metadata.creationTimestamp``; the count is
    ``series.count``, else ``count``, else 1.
    """
    involved = event.get("involvedObject") or {}
    if event.get("type") != "Warning" or involved.get("kind") != "Node":
        return None
    name = str(involved.get("name") or "")
    if not name:
        return None
    series = event.get("series") or {}
    metadata = event.get("metadata") or {}
    stamps = (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        metadata.get("creationTimestamp"),
    )
    when = next((t for t in map(parse_time, stamps) if t is not None), None)
    count = series.get("count") or event.get("count") or 1
    return WarningEvent(
        node_name=name,
        node_uid=str(involved.get("uid") or ""),
        reason=str(event.get("reason") or "Unknown"),
        message=str(event.get("message") or ""),
        count=count if isinstance(count, int) and count > 0 else 1,
        time=when,
    )


@dataclass(frozen=True, slots=True)
class _Occurrences:
    """The events behind one event alarm: event uid -> count."""

    counts: Mapping[str, int]

    def grew_from(self, before: _Occurrences) -> bool:
        return any(count > before.counts.get(uid, 0) for uid, count in self.counts.items())


class NodeAlarmTracker:
    """The active alarms of every node, from the node and Warning event reflectors."""

    def __init__(self, ctx: m.MappingContext, clock: Callable[[], float] = time.time) -> None:
        self._ctx = ctx
        self._clock = clock
        self._nodes: dict[str, JsonMap] = {}  # node uid -> node
        self._uid_by_name: dict[str, str] = {}
        self._events: dict[str, WarningEvent] = {}  # event uid -> event
        self._events_of: dict[str, set[str]] = {}  # node name -> event uids
        self._active: dict[str, dict[str, AlarmSignal]] = {}  # node uid -> key -> signal
        self._occurrences: dict[str, _Occurrences] = {}  # event alarm key -> its events

    # Inputs -------------------------------------------------------------------------------

    def node_changed(
        self, uid: str, _old: JsonMap | None, new: JsonMap | None
    ) -> list[AlarmSignal]:
        """A node was added, modified (``new``) or deleted (None): the alarm signals."""
        if new is None:
            node = self._nodes.pop(uid, None)
            if node is not None and self._uid_by_name.get(_name(node)) == uid:
                del self._uid_by_name[_name(node)]
            held = self._active.pop(uid, {})
            now = self._clock()
            for key in held:
                self._occurrences.pop(key, None)
            return [
                dataclasses.replace(signal, raised=False, event_time=now)
                for _, signal in sorted(held.items())
            ]
        old_node = self._nodes.get(uid)
        if old_node is not None and _name(old_node) != _name(new):
            self._uid_by_name.pop(_name(old_node), None)  # names never change; be safe
        self._nodes[uid] = new
        self._uid_by_name[_name(new)] = uid
        return self._recompute(uid)

    def event_changed(
        self, uid: str, _old: JsonMap | None, new: JsonMap | None
    ) -> list[AlarmSignal]:
        """An event was added, modified or deleted: the alarm signals of its node."""
        names: set[str] = set()
        gone = self._events.pop(uid, None)
        if gone is not None:
            names.add(gone.node_name)
            self._events_of.get(gone.node_name, set()).discard(uid)
        parsed = warning_event(new) if new is not None else None
        if parsed is not None:
            self._events[uid] = parsed
            self._events_of.setdefault(parsed.node_name, set()).add(uid)
            names.add(parsed.node_name)
        signals: list[AlarmSignal] = []
        for name in sorted(names):
            if not self._events_of.get(name):
                self._events_of.pop(name, None)
            node_uid = self._uid_by_name.get(name)
            if node_uid is not None:
                signals += self._recompute(node_uid)
        return signals

    # Outputs ------------------------------------------------------------------------------

    def snapshot(self) -> AlarmSnapshot:
        """Every active alarm, by node uid then key."""
        return AlarmSnapshot(
            active=tuple(
                signal
                for uid in sorted(self._active)
                for _, signal in sorted(self._active[uid].items())
            )
        )

    # The work -----------------------------------------------------------------------------

    def _recompute(self, uid: str) -> list[AlarmSignal]:
        """Recompute one node's alarms against those held; the signals, in key order."""
        node = self._nodes[uid]
        held = self._active.get(uid, {})
        fresh, occurrences = self._alarms_of(uid, node)
        signals: list[AlarmSignal] = []
        active: dict[str, AlarmSignal] = {}
        for key in sorted(held.keys() | fresh.keys()):
            before, after = held.get(key), fresh.get(key)
            if after is None:
                assert before is not None
                self._occurrences.pop(key, None)
                if before.definition_key != NODE_WARNING_EVENT:  # an expired event: MANUAL
                    cleared_at = self._clear_time(node, before)
                    signals.append(dataclasses.replace(before, raised=False, event_time=cleared_at))
                continue
            seen = self._occurrences.get(key)
            repeated = key in occurrences and seen is not None and occurrences[key].grew_from(seen)
            if before is None or before.severity != after.severity or repeated:
                signals.append(after)  # raised, severity changed, or refreshed
                active[key] = after
            else:
                active[key] = before  # nothing an SMO needs to hear about
        self._occurrences.update(occurrences)
        self._active[uid] = active
        return signals

    def _alarms_of(
        self, uid: str, node: JsonMap
    ) -> tuple[dict[str, AlarmSignal], dict[str, _Occurrences]]:
        """The alarms the node raises now, and the events behind each event alarm."""
        now = self._clock()
        name = _name(node)
        resource_id = m.node_resource_id(node, self._ctx)
        type_id = m.node_shape_type_id(m.node_shape(node), self._ctx)
        conditions = (node.get("status") or {}).get("conditions") or []
        fresh: dict[str, AlarmSignal] = {}
        for definition_key, alarm in condition_alarms(conditions).items():
            key = condition_alarm_key(uid, definition_key)
            fresh[key] = AlarmSignal(
                key=key,
                definition_key=definition_key,
                resource_id=resource_id,
                resource_type_id=type_id,
                severity=alarm.severity,
                raised=True,
                event_time=parse_time(alarm.since) or now,
                extensions=alarm.extensions(name),
            )
        by_reason: dict[str, list[tuple[str, WarningEvent]]] = {}
        for event_uid in sorted(self._events_of.get(name, ())):
            event = self._events[event_uid]
            if self._belongs(event, uid, node):
                by_reason.setdefault(event.reason, []).append((event_uid, event))
        occurrences: dict[str, _Occurrences] = {}
        for reason, events in by_reason.items():
            key = event_alarm_key(uid, reason)
            latest = max(events, key=lambda item: item[1].time or 0.0)[1]
            fresh[key] = AlarmSignal(
                key=key,
                definition_key=NODE_WARNING_EVENT,
                resource_id=resource_id,
                resource_type_id=type_id,
                severity=DEFINITION_BY_KEY[NODE_WARNING_EVENT].severity,
                raised=True,
                event_time=latest.time or now,
                extensions={
                    "nodeName": name,
                    "reason": reason,
                    "message": latest.message,
                    "count": sum(event.count for _, event in events),
                },
            )
            occurrences[key] = _Occurrences({event_uid: e.count for event_uid, e in events})
        return fresh, occurrences

    @staticmethod
    def _belongs(event: WarningEvent, uid: str, node: Mapping[str, Any]) -> bool:
        """Whether ``event`` is about this node, not an earlier node of the same name."""
        if event.node_uid not in ("", uid, event.node_name):
            return False
        created = parse_time((node.get("metadata") or {}).get("creationTimestamp"))
        return created is None or event.time is None or event.time >= created

    def _clear_time(self, node: Mapping[str, Any], signal: AlarmSignal) -> float:
        """When the alarm cleared: the recovered condition's transition, else now."""
        condition_type = CONDITION_OF_DEFINITION.get(signal.definition_key)
        for condition in _conditions(node):
            if condition.get("type") == condition_type:
                since = parse_time(condition.get("lastTransitionTime"))
                if since is not None:
                    return since
        return self._clock()


def _conditions(node: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    conditions = (node.get("status") or {}).get("conditions") or []
    return [c for c in conditions if isinstance(c, Mapping)]


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")
