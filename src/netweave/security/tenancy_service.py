"""The tenancy service behind ``/o2ims/v1/tenants`` and ``/o2ims/v1/roleBindings``.

It checks what the wire models cannot (path ids, the tenant a request may act in, merge
patches), lists with the SOL013 filter / field selection / paging of every surface, and
invalidates the :class:`~netweave.security.tenancy.Directory` after each of its writes so
this replica authenticates with the change at once.

Tenant scope: every method takes ``scope``, the tenant of the calling principal (None for
platform principals).  A scoped caller sees only its tenant, that tenant's users and the
role bindings in it; anything else -- reads and writes alike -- answers exactly as a
record that does not exist (404), so the API is no oracle of other tenants' records.

Deleting a tenant deletes its users and the role bindings in it with it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import pydantic

from netweave.errors import InvalidRequestError, NotFoundError
from netweave.query import PageMarkers, schema_of
from netweave.query.listing import (
    FieldSelectionParams,
    ListQuery,
    RenderedPage,
    list_page,
    render_one,
)
from netweave.security.tenancy import (
    Directory,
    RoleBinding,
    RoleBindingCreate,
    TenancyStore,
    Tenant,
    TenantCreate,
    TenantPatch,
    User,
    UserCreate,
    is_tenant_id,
    timestamp,
)

__all__ = ["TenancyService", "to_wire"]

_TENANTS = schema_of(Tenant)
_USERS = schema_of(User)
_BINDINGS = schema_of(RoleBinding)
#: the members of a tenant a merge patch may set, and those it may not touch
_PATCHABLE: Final = frozenset({"name", "description", "status", "quotas"})
_FIXED: Final = frozenset({"tenantId", "createdAt", "updatedAt"})


@dataclass(frozen=True, slots=True)
class _Listed:
    object_id: str
    wire: dict[str, Any]
    raw: bytes


def to_wire(record: pydantic.BaseModel) -> dict[str, Any]:
    """A tenancy record as the API shows it (camelCase, every member, nulls included)."""
    return record.model_dump(mode="json", by_alias=True)


def _listed(object_id: str, record: pydantic.BaseModel) -> _Listed:
    wire = to_wire(record)
    return _Listed(object_id, wire, orjson.dumps(wire))


def _missing_tenant(tenant_id: str) -> NotFoundError:
    return NotFoundError(f"tenant {tenant_id} does not exist")


def _missing_user(user_id: str) -> NotFoundError:
    return NotFoundError(f"user {user_id} does not exist")


def _missing_binding(binding_id: str) -> NotFoundError:
    return NotFoundError(f"role binding {binding_id} does not exist")


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _invalid(exc: pydantic.ValidationError) -> InvalidRequestError:
    """A validation failure as the 400 the request handlers give for bodies."""
    parts = []
    for error in exc.errors()[:5]:
        loc = "/".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{loc}: {error['msg']}")
    return InvalidRequestError("invalid request: " + "; ".join(parts))


class TenancyService:
    """Tenants, users and role bindings, as the admin API manages them."""

    def __init__(
        self,
        store: TenancyStore,
        *,
        directory: Directory,
        markers: PageMarkers,
        page_size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._directory = directory
        self._markers = markers
        self._page_size = page_size
        self._clock = clock

    # -- tenants ---------------------------------------------------------------------------

    async def create_tenant(self, request: TenantCreate, *, scope: str | None) -> Tenant:
        if scope is not None and request.tenant_id != scope:
            raise _missing_tenant(request.tenant_id)
        now = timestamp(self._clock())
        tenant = Tenant(**dict(request), created_at=now, updated_at=now)
        await self._store.create_tenant(tenant)
        self._directory.invalidate()
        return tenant

    async def list_tenants(self, query: ListQuery, *, scope: str | None) -> RenderedPage:
        tenants = await self._store.list_tenants()
        if scope is not None:
            tenants = [tenant for tenant in tenants if tenant.tenant_id == scope]
        entries = [_listed(tenant.tenant_id, tenant) for tenant in tenants]
        return self._page(entries, query, _TENANTS, "tenants", scope)

    async def get_tenant(
        self, tenant_id: str, selection: FieldSelectionParams, *, scope: str | None
    ) -> bytes:
        tenant = await self._tenant(tenant_id, scope)
        return render_one(_listed(tenant_id, tenant), selection, _TENANTS)

    async def update_tenant(self, tenant_id: str, patch: Any, *, scope: str | None) -> Tenant:
        """Apply a JSON merge patch (RFC 7396) of name, description, status and quotas.

        ``null`` resets: a quota to no limit, ``quotas`` to no limits at all, the
        description to empty; name and status cannot be null.  Nothing is written unless
        the patched tenant is valid.
        """
        if not self._visible(tenant_id, scope):
            raise _missing_tenant(tenant_id)
        members = _checked_patch(patch)
        now = timestamp(self._clock())
        updated = await self._store.update_tenant(
            tenant_id, lambda current: _merged(current, members, now)
        )
        if updated is None:
            raise _missing_tenant(tenant_id)
        self._directory.invalidate()
        return updated

    async def delete_tenant(self, tenant_id: str, *, scope: str | None) -> None:
        """Delete the tenant, its users and the role bindings in it."""
        if not self._visible(tenant_id, scope) or not await self._store.delete_tenant(tenant_id):
            raise _missing_tenant(tenant_id)
        self._directory.invalidate()

    # -- users -----------------------------------------------------------------------------

    async def create_user(self, tenant_id: str, request: UserCreate, *, scope: str | None) -> User:
        if not self._visible(tenant_id, scope):
            raise _missing_tenant(tenant_id)
        user = User(
            user_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            subject=request.subject,
            name=request.name,
            created_at=timestamp(self._clock()),
        )
        await self._store.create_user(user)  # 404 if the tenant does not exist
        self._directory.invalidate()
        return user

    async def list_users(
        self, tenant_id: str, query: ListQuery, *, scope: str | None
    ) -> RenderedPage:
        await self._tenant(tenant_id, scope)
        users = await self._store.list_users(tenant_id)
        entries = [_listed(user.user_id, user) for user in users]
        return self._page(entries, query, _USERS, "users", tenant_id)

    async def get_user(
        self,
        tenant_id: str,
        user_id: str,
        selection: FieldSelectionParams,
        *,
        scope: str | None,
    ) -> bytes:
        user = await self._user(tenant_id, user_id, scope)
        return render_one(_listed(user_id, user), selection, _USERS)

    async def delete_user(self, tenant_id: str, user_id: str, *, scope: str | None) -> None:
        await self._user(tenant_id, user_id, scope)
        if not await self._store.delete_user(user_id):
            raise _missing_user(user_id)
        self._directory.invalidate()

    # -- role bindings ---------------------------------------------------------------------

    async def create_binding(self, request: RoleBindingCreate, *, scope: str | None) -> RoleBinding:
        if scope is not None and request.tenant_id != scope:
            # a system role or another tenant: as if that tenant did not exist
            raise _missing_tenant(request.tenant_id or "(none)")
        binding = RoleBinding(
            role_binding_id=str(uuid.uuid4()),
            subject=request.subject,
            role=request.role,
            tenant_id=request.tenant_id,
            created_at=timestamp(self._clock()),
        )
        try:
            await self._store.create_binding(binding)
        except NotFoundError:
            raise InvalidRequestError(
                f"tenantId: tenant {request.tenant_id} does not exist"
            ) from None
        self._directory.invalidate()
        return binding

    async def list_bindings(self, query: ListQuery, *, scope: str | None) -> RenderedPage:
        bindings = await self._store.list_bindings()
        if scope is not None:
            bindings = [binding for binding in bindings if binding.tenant_id == scope]
        entries = [_listed(binding.role_binding_id, binding) for binding in bindings]
        return self._page(entries, query, _BINDINGS, "roleBindings", scope)

    async def get_binding(
        self, binding_id: str, selection: FieldSelectionParams, *, scope: str | None
    ) -> bytes:
        binding = await self._binding(binding_id, scope)
        return render_one(_listed(binding_id, binding), selection, _BINDINGS)

    async def delete_binding(self, binding_id: str, *, scope: str | None) -> None:
        await self._binding(binding_id, scope)
        if not await self._store.delete_binding(binding_id):
            raise _missing_binding(binding_id)
        self._directory.invalidate()

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _visible(tenant_id: str, scope: str | None) -> bool:
        """Whether a caller of ``scope`` may see a tenant called ``tenant_id`` (if any)."""
        return is_tenant_id(tenant_id) and (scope is None or tenant_id == scope)

    async def _tenant(self, tenant_id: str, scope: str | None) -> Tenant:
        tenant = (
            await self._store.get_tenant(tenant_id) if self._visible(tenant_id, scope) else None
        )
        if tenant is None:
            raise _missing_tenant(tenant_id)
        return tenant

    async def _user(self, tenant_id: str, user_id: str, scope: str | None) -> User:
        if not self._visible(tenant_id, scope):
            raise _missing_tenant(tenant_id)
        user = await self._store.get_user(user_id) if _is_uuid(user_id) else None
        if user is None or user.tenant_id != tenant_id:
            raise _missing_user(user_id)
        return user

    async def _binding(self, binding_id: str, scope: str | None) -> RoleBinding:
        binding = await self._store.get_binding(binding_id) if _is_uuid(binding_id) else None
        if binding is None or (scope is not None and binding.tenant_id != scope):
            raise _missing_binding(binding_id)
        return binding

    def _page(
        self,
        entries: list[_Listed],
        query: ListQuery,
        schema: Mapping[str, Any],
        listing: str,
        parent: str | None,
    ) -> RenderedPage:
        scope = query.scope(listing, parent)
        return list_page(
            entries,
            query,
            schema=schema,
            markers=self._markers,
            scope=scope,
            page_size=self._page_size,
        )


def _checked_patch(patch: Any) -> dict[str, Any]:
    """The members of a merge patch of a tenant, checked for names and types."""
    if not isinstance(patch, dict):
        raise InvalidRequestError("a merge patch of a tenant must be a JSON object")
    fixed = sorted(_FIXED.intersection(patch))
    if fixed:
        raise InvalidRequestError(f"{', '.join(fixed)}: cannot be changed")
    unknown = sorted(set(patch) - _PATCHABLE)
    if unknown:
        raise InvalidRequestError(f"{', '.join(unknown)}: no such member of a tenant")
    try:
        TenantPatch.model_validate(patch, by_alias=True, by_name=False)  # camelCase only
    except pydantic.ValidationError as exc:
        raise _invalid(exc) from None
    return patch


def _merged(current: Tenant, patch: Mapping[str, Any], now: str) -> Tenant:
    """``current`` with ``patch`` merged in (RFC 7396); 400 unless the result is valid."""
    wire = to_wire(current)
    for member, value in patch.items():
        if member == "quotas":
            quotas = dict(wire["quotas"]) if value is not None else {}
            quotas.update(value or {})  # a null quota is no limit, as if removed
            wire["quotas"] = quotas
        elif member == "description" and value is None:
            wire["description"] = ""
        else:
            wire[member] = value
    try:
        merged = Tenant.model_validate(wire)
    except pydantic.ValidationError as exc:
        raise _invalid(exc) from None
    if merged == current:
        return current  # nothing changed: no write, no new updatedAt
    return merged.model_copy(update={"updated_at": now})
