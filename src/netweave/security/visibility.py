"""What a tenant may see of the inventory, and of its changes.

A principal of tenant ``t`` sees

* the resource pools owned by ``t`` and the shared (untenanted, marked shared) pools;
* the resources of those pools;
* the O-Cloud's catalogue: resource types, deployment managers, locations and sites,
  which describe the cloud rather than hold anybody's workloads.

Platform principals (no tenant) see everything.  Objects a tenant may not see are
answered as if they did not exist (404, never 403), so ids cannot be probed.

Pool ownership comes from the pools themselves (see :mod:`netweave.models.ownership`);
a resource takes its pool's.  A change to a resource whose pool has already left the
view is judged by the pool's last known ownership, which :class:`TenantVisibility`
remembers from the events it listens to.
"""

from __future__ import annotations

from collections import OrderedDict

from netweave.adapters.base import InventoryEvent
from netweave.inventory.view import InventoryView
from netweave.models.inventory import InventoryModel, ObjectKind, ResourcePool
from netweave.models.ownership import Ownership, ownership_of

__all__ = ["TenantVisibility"]

_UNOWNED: Ownership = (None, False)
#: ownership of pools that left the view, kept for the changes of their resources
_FORGOTTEN_POOLS_KEPT = 10_000


class TenantVisibility:
    def __init__(self, view: InventoryView) -> None:
        self._view = view
        self._gone: OrderedDict[str, Ownership] = OrderedDict()

    # -- the view's listener: remember the owners of pools that go away ---------------

    def on_event(self, event: InventoryEvent) -> None:
        if event.kind is ObjectKind.RESOURCE_POOL and event.post is None and event.prior:
            self._gone[event.object_id] = _ownership(event.prior)
            if len(self._gone) > _FORGOTTEN_POOLS_KEPT:
                self._gone.popitem(last=False)

    # -- questions ----------------------------------------------------------------------

    def pool_ownership(self, pool_id: str | None) -> Ownership:
        if pool_id is None:
            return _UNOWNED
        entry = self._view.get(ObjectKind.RESOURCE_POOL, pool_id)
        if entry is not None:
            return _ownership(entry.model)
        return self._gone.get(pool_id, _UNOWNED)

    def sees(self, tenant: str | None, kind: ObjectKind, model: InventoryModel) -> bool:
        """Whether a principal of ``tenant`` (None: the platform) may see ``model``."""
        if tenant is None:
            return True
        if kind is ObjectKind.RESOURCE_POOL:
            return _visible(tenant, _ownership(model))
        if kind is ObjectKind.RESOURCE:
            return _visible(tenant, self.pool_ownership(model.parent_id))
        return True

    def sees_pool(self, tenant: str | None, pool_id: str) -> bool:
        return tenant is None or _visible(tenant, self.pool_ownership(pool_id))

    def sees_event(self, tenant: str | None, event: InventoryEvent) -> bool:
        """Whether the change concerns an object ``tenant`` may see (before or after it)."""
        if tenant is None:
            return True
        return any(
            self.sees(tenant, event.kind, model)
            for model in (event.prior, event.post)
            if model is not None
        )


def _ownership(model: InventoryModel) -> Ownership:
    if isinstance(model, ResourcePool):
        return ownership_of(model.extensions)
    return _UNOWNED


def _visible(tenant: str, ownership: Ownership) -> bool:
    owner, shared = ownership
    return owner == tenant or (owner is None and shared)
