"""The write half of the service layer: pool and resource lifecycle, and their operations.

Every write goes to the backend (:mod:`netweave.adapters.lifecycle`) and is then *read
back from the inventory view*, which the backend's watch keeps current: what a write
answers, what later reads show and what subscribers are notified of all come from the
same place.  Pool writes are quick (the backend accepts a new object) and answer when the
view shows the result, or after ``wait_timeout`` with what the backend reported.
Resource writes are long (a machine to provision, a node to drain) and run as
*operations*: the request answers 202 with the operation, whose steps and outcome are kept
in the :class:`~netweave.store.operations.OperationStore`.

Tenancy: a tenant's principal creates pools owned by its tenant (up to the tenant's
``maxResourcePools``, 403 beyond), and changes only pools it owns: a pool it cannot see is
404, a shared pool it can see but does not own is 403.  Platform principals may create a
pool for a tenant (``extensions.tenant``) and change any pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Literal

from netweave.adapters.base import Capability, InfrastructureAdapter
from netweave.adapters.lifecycle import PoolChange, PoolLifecycle, PoolRequest, ResourceLifecycle
from netweave.errors import (
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    NotSupportedError,
    O2Error,
)
from netweave.inventory.view import InventoryView
from netweave.models.inventory import ObjectKind, ResourcePool
from netweave.models.lifecycle import (
    Operation,
    OperationStep,
    ResourcePoolCreate,
    ResourcePoolPatch,
)
from netweave.observability.logging import get_logger
from netweave.security.principal import Principal
from netweave.security.visibility import TenantVisibility
from netweave.store.operations import OperationStore

__all__ = ["LifecycleService"]

_log = get_logger("netweave.inventory.lifecycle")

#: a running operation untouched this long belonged to a replica that stopped
STALE_AFTER = 120.0
#: how often a running operation says it is still alive
HEARTBEAT = 15.0

QuotaLookup = Callable[[str], Awaitable[int | None]]
TenantCheck = Callable[[str], Awaitable[bool]]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _age(stamp: str) -> float:
    return time.time() - dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class LifecycleService:
    def __init__(
        self,
        adapter: InfrastructureAdapter,
        view: InventoryView,
        visibility: TenantVisibility,
        operations: OperationStore,
        *,
        ocloud_id: str,
        max_resource_pools: QuotaLookup,
        tenant_exists: TenantCheck,
        wait_timeout: float = 10.0,
    ) -> None:
        self._adapter = adapter
        self._view = view
        self._visibility = visibility
        self._operations = operations
        self._ocloud_id = ocloud_id
        self._max_pools = max_resource_pools
        self._tenant_exists = tenant_exists
        self._wait_timeout = wait_timeout
        self._running: set[asyncio.Task[None]] = set()

    # -- pools ----------------------------------------------------------------------------

    def _pools(self) -> PoolLifecycle:
        adapter = self._adapter
        if Capability.POOL_LIFECYCLE not in adapter.capabilities or not isinstance(
            adapter, PoolLifecycle
        ):
            raise NotSupportedError(f"the {adapter.name} backend cannot create or change pools")
        return adapter

    def _resources(self) -> ResourceLifecycle:
        adapter = self._adapter
        if Capability.RESOURCE_LIFECYCLE not in adapter.capabilities or not isinstance(
            adapter, ResourceLifecycle
        ):
            raise NotSupportedError(f"the {adapter.name} backend cannot add or retire resources")
        return adapter

    async def create_pool(self, body: ResourcePoolCreate, principal: Principal) -> bytes:
        """Create a pool; answers its JSON once the inventory shows it."""
        backend = self._pools()
        if body.o_cloud_id is not None and body.o_cloud_id != self._ocloud_id:
            raise InvalidRequestError(
                f"oCloudId {body.o_cloud_id} is not this O-Cloud ({self._ocloud_id})"
            )
        tenant = await self._owner_for(body, principal)
        if tenant is not None:
            await self._check_pool_quota(tenant)
        extensions = body.extensions
        request = PoolRequest(
            name=body.name,
            description=body.description,
            location=body.location,
            global_location_id=body.global_location_id,
            instance_type=extensions.instance_type,
            replicas=extensions.replicas,
            labels=dict(extensions.labels),
            taints=tuple(taint.to_taint() for taint in extensions.taints),
            tenant=tenant,
        )
        pool_id = await backend.create_pool(request)
        _log.info("resource pool created", resource_pool_id=pool_id, name=body.name, tenant=tenant)
        await self._wait(lambda: self._view.get(ObjectKind.RESOURCE_POOL, pool_id) is not None)
        entry = self._view.get(ObjectKind.RESOURCE_POOL, pool_id)
        if entry is None:  # the watch has not delivered it yet: say what we know
            return (
                ResourcePool(
                    resource_pool_id=pool_id,
                    name=body.name,
                    description=body.description,
                    o_cloud_id=self._ocloud_id,
                    global_location_id=body.global_location_id or "unknown",
                    location=body.location,
                )
                .model_dump_json(by_alias=True, exclude_none=True)
                .encode()
            )
        return entry.raw

    async def _owner_for(self, body: ResourcePoolCreate, principal: Principal) -> str | None:
        asked = body.extensions.tenant
        if principal.tenant is not None:
            if asked is not None and asked != principal.tenant:
                raise InvalidRequestError(
                    "extensions.tenant: a tenant's pools belong to that tenant; leave it out"
                )
            return principal.tenant
        if asked is not None and not await self._tenant_exists(asked):
            raise InvalidRequestError(f"extensions.tenant: tenant {asked} does not exist")
        return asked

    async def _check_pool_quota(self, tenant: str) -> None:
        limit = await self._max_pools(tenant)
        if limit is None:
            return
        owned = sum(
            1
            for entry in self._view.entries(ObjectKind.RESOURCE_POOL)
            if self._visibility.pool_ownership(entry.object_id)[0] == tenant
        )
        if owned >= limit:
            raise ForbiddenError(
                f"resource pool quota exceeded: tenant {tenant} may hold {limit} pools",
                attributes={"quota": "maxResourcePools", "limit": str(limit)},
            )

    def _own_pool(self, pool_id: str, principal: Principal) -> None:
        """404 for a pool the principal cannot see, 403 for one it sees but does not own."""
        entry = self._view.get(ObjectKind.RESOURCE_POOL, pool_id)
        tenant = principal.tenant
        if entry is None or not self._visibility.sees_pool(tenant, pool_id):
            raise NotFoundError(f"resource pool {pool_id} does not exist")
        if tenant is not None and self._visibility.pool_ownership(pool_id)[0] != tenant:
            raise ForbiddenError(f"resource pool {pool_id} is shared; only the operator changes it")

    async def replace_pool(
        self, pool_id: str, body: ResourcePoolCreate, principal: Principal
    ) -> bytes:
        """``PUT``: the mutable members (description, labels, replicas) take the body's
        values; the others must be unchanged."""
        self._own_pool(pool_id, principal)
        entry = self._view.get(ObjectKind.RESOURCE_POOL, pool_id)
        assert entry is not None
        current = entry.model
        assert isinstance(current, ResourcePool)
        fixed = {
            "name": (body.name, current.name),
            "oCloudId": (body.o_cloud_id, current.o_cloud_id),
            "location": (body.location, current.location),
            "globalLocationId": (body.global_location_id, current.global_location_id),
        }
        changed = [name for name, (new, old) in fixed.items() if new is not None and new != old]
        extensions = body.extensions
        if extensions.instance_type is not None and extensions.instance_type != (
            current.extensions.get("instanceType")
        ):
            changed.append("extensions.instanceType")
        taints = [taint.model_dump(by_alias=True) for taint in extensions.taints]
        if taints and taints != current.extensions.get("taints", []):
            changed.append("extensions.taints")
        if (
            extensions.tenant is not None
            and extensions.tenant != (self._visibility.pool_ownership(pool_id)[0])
        ):
            changed.append("extensions.tenant")
        if changed:
            raise InvalidRequestError(f"{', '.join(changed)} cannot be changed")
        change = PoolChange(
            description=body.description,
            labels=dict(body.extensions.labels),
            replicas=body.extensions.replicas,
        )
        return await self._update(pool_id, change)

    async def patch_pool(
        self, pool_id: str, patch: ResourcePoolPatch, principal: Principal
    ) -> bytes:
        self._own_pool(pool_id, principal)
        extensions = patch.extensions
        change = PoolChange(
            description=patch.description,
            labels=extensions.labels if extensions is not None else None,
            replicas=extensions.replicas if extensions is not None else None,
        )
        return await self._update(pool_id, change)

    async def _update(self, pool_id: str, change: PoolChange) -> bytes:
        backend = self._pools()
        before = self._view.get(ObjectKind.RESOURCE_POOL, pool_id)
        await backend.update_pool(pool_id, change)
        _log.info("resource pool updated", resource_pool_id=pool_id)
        if before is not None and not self._changes(before.model, change):
            return before.raw  # nothing to wait for
        await self._wait(
            lambda: (
                (entry := self._view.get(ObjectKind.RESOURCE_POOL, pool_id)) is not None
                and (before is None or entry.raw != before.raw)
            ),
            within=min(self._wait_timeout, 3.0),  # a change that alters nothing shows nothing
        )
        entry = self._view.get(ObjectKind.RESOURCE_POOL, pool_id)
        if entry is None:
            raise NotFoundError(f"resource pool {pool_id} does not exist")
        return entry.raw

    def _changes(self, pool: object, change: PoolChange) -> bool:
        """Whether ``change`` would alter what the inventory shows of ``pool``."""
        assert isinstance(pool, ResourcePool)
        extensions = pool.extensions
        if change.description is not None and change.description != pool.description:
            return True
        if change.labels is not None and dict(change.labels) != (extensions.get("labels") or {}):
            return True
        if change.replicas is not None:
            size = extensions.get("replicas")
            if size is None:
                size = len(self._view.entries(ObjectKind.RESOURCE, parent=pool.resource_pool_id))
            return bool(change.replicas != size)
        return False

    async def delete_pool(self, pool_id: str, principal: Principal, *, force: bool) -> None:
        self._own_pool(pool_id, principal)
        await self._pools().delete_pool(pool_id, force=force)
        _log.info("resource pool deleted", resource_pool_id=pool_id, force=force)
        await self._wait(lambda: self._view.get(ObjectKind.RESOURCE_POOL, pool_id) is None)

    async def _wait(self, check: Callable[[], object], *, within: float | None = None) -> bool:
        """Whether ``check()`` came true within ``within`` seconds (the view catching up)."""
        deadline = time.monotonic() + (self._wait_timeout if within is None else within)
        while True:
            if check():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    # -- resources: long-running operations ------------------------------------------------

    async def add_resource(self, pool_id: str, principal: Principal) -> Operation:
        backend = self._resources()
        self._own_pool(pool_id, principal)

        async def run(progress: Callable[[str], None]) -> str | None:
            return await backend.add_resource(pool_id, progress)

        return await self._start("addResource", principal, run, pool_id=pool_id)

    async def remove_resource(self, resource_id: str, principal: Principal) -> Operation:
        backend = self._resources()
        entry = self._view.get(ObjectKind.RESOURCE, resource_id)
        if entry is None or not self._visibility.sees(
            principal.tenant, ObjectKind.RESOURCE, entry.model
        ):
            raise NotFoundError(f"resource {resource_id} does not exist")
        pool_id = entry.parent_id
        if pool_id is not None:
            self._own_pool(pool_id, principal)

        async def run(progress: Callable[[str], None]) -> str | None:
            await backend.remove_resource(resource_id, progress)
            return resource_id

        return await self._start(
            "removeResource", principal, run, pool_id=pool_id, resource_id=resource_id
        )

    async def operation(self, operation_id: str, principal: Principal) -> Operation:
        found = await self._operations.get(operation_id)
        if found is None or (principal.tenant is not None and found.tenant_id != principal.tenant):
            raise NotFoundError(f"operation {operation_id} does not exist")
        if found.status == "running" and _age(found.updated_at) > STALE_AFTER:
            return found.model_copy(
                update={
                    "status": "failed",
                    "error": "the gateway replica running this operation stopped; "
                    "check the resource and try again",
                }
            )
        return found

    async def _start(
        self,
        kind: Literal["addResource", "removeResource"],
        principal: Principal,
        work: Callable[[Callable[[str], None]], Awaitable[str | None]],
        *,
        pool_id: str | None,
        resource_id: str | None = None,
    ) -> Operation:
        now = _now()
        operation = Operation(
            operation_id=str(uuid.uuid4()),
            type=kind,
            status="running",
            resource_pool_id=pool_id,
            resource_id=resource_id,
            steps=[OperationStep(time=now, message="accepted")],
            created_at=now,
            updated_at=now,
            tenant_id=principal.tenant,
        )
        await self._operations.put(operation)
        task = asyncio.create_task(self._run(operation, work), name=f"operation-{kind}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return operation

    async def _run(
        self,
        operation: Operation,
        work: Callable[[Callable[[str], None]], Awaitable[str | None]],
    ) -> None:
        state = {"operation": operation}
        writes: list[asyncio.Task[None]] = []
        in_order = asyncio.Lock()  # fair: the saves reach the store in the order they were made

        async def save(snapshot: Operation) -> None:
            async with in_order:
                await self._save(snapshot)

        def record(**changes: object) -> None:
            state["operation"] = state["operation"].model_copy(
                update={**changes, "updated_at": _now()}
            )
            writes.append(asyncio.ensure_future(save(state["operation"])))

        def progress(message: str) -> None:
            step = OperationStep(time=_now(), message=message)
            record(steps=[*state["operation"].steps, step])

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT)
                record()

        beating = asyncio.create_task(heartbeat())
        try:
            result = await work(progress)
        except asyncio.CancelledError:
            record(status="failed", error="the gateway stopped while the operation ran")
            raise
        except O2Error as error:
            progress(f"failed: {error.detail}")
            record(status="failed", error=error.detail)
        except Exception as error:  # the backend failed in a way nobody foresaw
            _log.exception("operation failed", operation_id=operation.operation_id)
            record(status="failed", error=f"internal error ({type(error).__name__})")
        else:
            progress("done")
            update: dict[str, object] = {"status": "succeeded"}
            if result is not None:
                update["resource_id"] = result
            record(**update)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await asyncio.gather(*writes, return_exceptions=True)
            await save(state["operation"])

    async def _save(self, operation: Operation) -> None:
        try:
            await self._operations.put(operation)
        except O2Error as error:
            _log.warning(
                "operation progress not stored",
                operation_id=operation.operation_id,
                error=error.detail,
            )

    async def aclose(self) -> None:
        """Stop running operations (they are recorded as failed)."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
