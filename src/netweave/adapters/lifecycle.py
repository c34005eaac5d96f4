"""Writes to a backend: resource pool and resource lifecycle.

The standard O2-IMS inventory is read-only; the gateway API (``/o2ims/v1``) lets an
operator create, resize and delete pools and add or retire resources.  A backend that
can do so declares :attr:`~netweave.adapters.base.Capability.POOL_LIFECYCLE` and/or
:attr:`~netweave.adapters.base.Capability.RESOURCE_LIFECYCLE` and implements the matching
protocol below.

Writes never touch the inventory view directly: the backend changes its objects, and the
change reaches the view (and the notifications) through ``watch()``, the same way as a
change made by anyone else.  A write method returns once the backend has accepted the
change; the gateway then waits for the view to show it.

Errors are :mod:`netweave.errors`: ``InvalidRequestError`` (400) for a request the backend
cannot honour (replicas for a pool that has no machine API, say), ``NotFoundError`` (404)
for an unknown id, ``ConflictError`` (409) for a duplicate name or a pool that still has
resources, ``BackendError``/``BackendUnavailableError`` (502/503) when the backend fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, runtime_checkable

__all__ = [
    "LABEL_KEY",
    "POOL_NAME",
    "PoolChange",
    "PoolLifecycle",
    "PoolRequest",
    "Progress",
    "ResourceLifecycle",
    "Taint",
    "TaintEffect",
]

#: a pool name is a Kubernetes object name (DNS-1123 label), whatever the backend
POOL_NAME: Final = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
#: a label key: an optional DNS-subdomain prefix and a name (Kubernetes' rules)
LABEL_KEY: Final = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

#: reports progress of a long-running write, one human-readable step at a time
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: TaintEffect
    value: str = ""


@dataclass(frozen=True, slots=True)
class PoolRequest:
    """A resource pool to create (validated by the gateway before it gets here)."""

    name: str
    description: str = ""
    location: str | None = None
    global_location_id: str | None = None
    #: the machine shape of the pool's nodes (``node.kubernetes.io/instance-type``)
    instance_type: str | None = None
    #: how many nodes; None: the backend's default (none for a pool without machines)
    replicas: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Taint] = ()
    #: the tenant owning the new pool (set by the gateway from the caller, never by it)
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class PoolChange:
    """What an update changes; None leaves a member as it is."""

    description: str | None = None
    #: the pool's own labels, replaced as a whole (ownership labels are kept)
    labels: Mapping[str, str] | None = None
    replicas: int | None = None


@runtime_checkable
class PoolLifecycle(Protocol):
    async def create_pool(self, request: PoolRequest) -> str:
        """Create the pool; returns the ``resourcePoolId`` it will have in the inventory."""

    async def update_pool(self, pool_id: str, change: PoolChange) -> None: ...

    async def delete_pool(self, pool_id: str, *, force: bool = False) -> None:
        """Delete a pool the gateway created.  A pool that still has resources is a
        ``ConflictError`` unless ``force``, which removes them with it."""


@runtime_checkable
class ResourceLifecycle(Protocol):
    async def add_resource(self, pool_id: str, progress: Progress) -> str | None:
        """Add one resource (node) to a pool; returns its ``resourceId`` when known.

        May take long (a machine to provision); ``progress`` reports the steps."""

    async def remove_resource(self, resource_id: str, progress: Progress) -> None:
        """Retire a resource: stop new work landing on it, move its work away (drain,
        respecting disruption budgets), then remove it.  Raises (with the reason) when a
        step cannot complete, leaving the resource in place."""
