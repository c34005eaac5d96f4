"""What a tenant may see of alarms: those of the resources it may see.

An alarm concerns a resource; a resource belongs to a pool, and the pool's ownership
decides (:class:`~netweave.security.visibility.TenantVisibility`).  The resource's pool is
looked up in the inventory view; when the resource has left the view (a node that was
deleted, whose alarms were cleared), the pool it had when the alarm was raised is used.
An alarm whose pool is unknown is seen by platform principals only.
"""

from __future__ import annotations

from collections.abc import Callable

from netweave.inventory.view import InventoryView
from netweave.models.inventory import ObjectKind
from netweave.security.visibility import TenantVisibility
from netweave.store.alarms import StoredAlarm

__all__ = ["AlarmScope"]


class AlarmScope:
    def __init__(
        self,
        pool_of: Callable[[str], str | None],
        sees_pool: Callable[[str | None, str], bool],
    ) -> None:
        """``pool_of(resource_id)`` names a resource's pool (None: unknown);
        ``sees_pool(tenant, pool_id)`` says whether a principal of ``tenant`` sees it."""
        self.pool_of = pool_of
        self._sees_pool = sees_pool

    @classmethod
    def of(cls, view: InventoryView, visibility: TenantVisibility) -> AlarmScope:
        def pool_of(resource_id: str) -> str | None:
            entry = view.get(ObjectKind.RESOURCE, resource_id)
            return None if entry is None else entry.parent_id

        return cls(pool_of, visibility.sees_pool)

    def sees(self, tenant: str | None, alarm: StoredAlarm) -> bool:
        """Whether a principal of ``tenant`` (None: the platform) may see ``alarm``."""
        if tenant is None:
            return True
        pool = self.pool_of(alarm.record.resource_id) or alarm.resource_pool_id
        return pool is not None and self._sees_pool(tenant, pool)
