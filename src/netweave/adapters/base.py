"""The protocol every infrastructure backend implements.

An adapter turns one kind of infrastructure (the simulated O-Cloud, a Kubernetes
cluster, ...) into O2-IMS inventory objects.  It offers

* ``list_objects(kind)`` / ``get_object(kind, id)``: direct reads from the backend, used
  only while the inventory view is cold and by tooling;
* ``watch()``: the live stream.  Its first item is always an :class:`InventorySnapshot`
  of everything the backend holds; after it come :class:`InventoryEvent` items, each
  with the O2-IMS state of the object before and after the change.  A later snapshot
  (after the adapter lost track of the backend, e.g. a watch that expired) replaces the
  whole view; the view computes the create/modify/delete events the difference implies;
* ``capabilities``: what the backend can do beyond reads;
* ``aclose()``: release connections and stop background work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import ClassVar, Protocol, runtime_checkable

from netweave.models.inventory import InventoryModel, ObjectKind

__all__ = [
    "Capability",
    "EventType",
    "InfrastructureAdapter",
    "InventoryEvent",
    "InventorySnapshot",
    "WatchItem",
]


class Capability(StrEnum):
    """Optional abilities of a backend."""

    WATCH = "watch"  #: changes are pushed, not polled
    CHURN = "churn"  #: the backend generates its own changes (simulated O-Cloud)
    POOL_LIFECYCLE = "pool-lifecycle"  #: resource pools can be created and deleted
    RESOURCE_LIFECYCLE = "resource-lifecycle"  #: resources can be added and retired


class EventType(IntEnum):
    """The O2-IMS ``notificationEventType`` of an inventory change."""

    CREATE = 0
    MODIFY = 1
    DELETE = 2


@dataclass(frozen=True, slots=True)
class InventoryEvent:
    """One change of one inventory object, with its O2-IMS state before and after."""

    kind: ObjectKind
    type: EventType
    object_id: str
    prior: InventoryModel | None = None
    post: InventoryModel | None = None

    def __post_init__(self) -> None:
        if self.type is EventType.CREATE and (self.post is None or self.prior is not None):
            raise ValueError("a create event has a post state and no prior state")
        if self.type is EventType.MODIFY and (self.post is None or self.prior is None):
            raise ValueError("a modify event has both a prior and a post state")
        if self.type is EventType.DELETE and (self.prior is None or self.post is not None):
            raise ValueError("a delete event has a prior state and no post state")


@dataclass(frozen=True, slots=True)
class InventorySnapshot:
    """Everything a backend holds at one moment, by kind."""

    objects: Mapping[ObjectKind, Sequence[InventoryModel]] = field(default_factory=dict)


WatchItem = InventorySnapshot | InventoryEvent


@runtime_checkable
class InfrastructureAdapter(Protocol):
    """A backend of the O2-IMS inventory."""

    name: ClassVar[str]

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    async def list_objects(self, kind: ObjectKind) -> Sequence[InventoryModel]: ...

    async def get_object(self, kind: ObjectKind, object_id: str) -> InventoryModel | None: ...

    def watch(self) -> AsyncIterator[WatchItem]: ...

    async def aclose(self) -> None: ...
