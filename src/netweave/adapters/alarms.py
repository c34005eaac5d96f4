"""Alarms from a backend: its alarm dictionaries, and the alarms it raises and clears.

A backend that watches infrastructure health implements :class:`AlarmSource`.  It speaks
in its own stable keys; the gateway's alarm service turns them into O2-IMS objects with
ids (alarm definition and probable cause ids are UUIDv5 of the keys under the O-Cloud's
namespace), keeps the alarm event records in the store and notifies subscribers.

The stream of :meth:`AlarmSource.alarm_signals` starts with an :class:`AlarmSnapshot` of
every alarm active now (also after the source lost track of the backend and re-listed),
then carries :class:`AlarmSignal` changes: raised, changed severity, cleared.  An alarm
the service holds as active and a snapshot no longer lists has cleared while nobody was
looking.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "SEVERITY_CLEARED",
    "SEVERITY_CRITICAL",
    "SEVERITY_INDETERMINATE",
    "SEVERITY_MAJOR",
    "SEVERITY_MINOR",
    "SEVERITY_WARNING",
    "AlarmDefinitionSpec",
    "AlarmDictionarySpec",
    "AlarmSignal",
    "AlarmSignalItem",
    "AlarmSnapshot",
    "AlarmSource",
]

#: O2-IMS perceived severities
SEVERITY_CRITICAL = 0
SEVERITY_MAJOR = 1
SEVERITY_MINOR = 2
SEVERITY_WARNING = 3
SEVERITY_INDETERMINATE = 4
SEVERITY_CLEARED = 5


@dataclass(frozen=True, slots=True)
class AlarmDefinitionSpec:
    """One kind of alarm a resource type can raise."""

    key: str  #: stable within the backend, e.g. ``node-not-ready``
    name: str
    description: str
    proposed_repair_actions: str
    #: AUTOMATIC: the backend clears it when the condition recovers; MANUAL: an operator does
    clearing_type: Literal["AUTOMATIC", "MANUAL"]
    severity: int  #: the usual perceived severity (0 CRITICAL .. 4 INDETERMINATE)
    probable_cause: str  #: the probable cause's name (its id derives from it)
    probable_cause_description: str
    change_type: Literal["ADDED", "DELETED", "MODIFIED"] = "ADDED"
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlarmDictionarySpec:
    """The alarms of one resource type."""

    resource_type_id: str
    definitions: Sequence[AlarmDefinitionSpec]
    vendor: str = ""
    version: str = "1.0"


@dataclass(frozen=True, slots=True)
class AlarmSignal:
    """An alarm raised, changed or cleared.

    ``key`` names one alarm instance and stays the same while it is active and across
    restarts (e.g. the node uid and the definition key); a later raise with the same key
    after a clear is a new alarm.
    """

    key: str
    definition_key: str
    resource_id: str
    resource_type_id: str
    severity: int  #: the perceived severity while raised (ignored when cleared)
    raised: bool  #: False: the condition recovered
    event_time: float  #: epoch seconds when the backend saw it
    extensions: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlarmSnapshot:
    """Every alarm active now (each an :class:`AlarmSignal` with ``raised=True``)."""

    active: Sequence[AlarmSignal] = ()


AlarmSignalItem = AlarmSnapshot | AlarmSignal


@runtime_checkable
class AlarmSource(Protocol):
    def alarm_dictionaries(self) -> Sequence[AlarmDictionarySpec]:
        """The dictionaries of the resource types the backend has now."""

    def alarm_signals(self) -> AsyncIterator[AlarmSignalItem]:
        """A snapshot of the active alarms, then their changes, until the source closes."""
