"""Tenants, their users and role bindings: ``/o2ims/v1/tenants`` and ``/o2ims/v1/roleBindings``
(netweave's own admin API).

The authentication middleware has checked the route's permission before a handler runs;
what is left here is the tenant scope: the principal in ``scope["netweave.principal"]``
(platform scope when there is none) is handed to :class:`TenancyService`, which hides
every other tenant's records behind 404s.  Lists answer ``{"items": [...], "nextMarker":
...}`` with the SOL013 filter / field selection parameters and ``nextpage_opaque_marker``;
creation answers 201 with ``Location``; deletion 204.  Deleting a tenant deletes its users
and the role bindings in it.
"""

from __future__ import annotations

from typing import Any

import orjson
import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from netweave.api.params import field_params, list_query
from netweave.errors import InvalidRequestError
from netweave.models.common import ProblemDetails, WireModel
from netweave.query.listing import RenderedPage
from netweave.security.principal import Principal
from netweave.security.tenancy import (
    RoleBinding,
    RoleBindingCreate,
    Tenant,
    TenantCreate,
    TenantPatch,
    User,
    UserCreate,
)
from netweave.security.tenancy_service import TenancyService, to_wire

__all__ = ["PREFIX", "router"]

PREFIX = "/o2ims/v1"
_JSON = "application/json"
_PROBLEM = {"model": ProblemDetails, "content": {"application/problem+json": {}}}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _PROBLEM}
_CREATED: dict[int | str, dict[str, Any]] = {409: _PROBLEM}

router = APIRouter(
    prefix=PREFIX,
    tags=["netweave tenancy"],
    responses={400: _PROBLEM, 401: _PROBLEM, 403: _PROBLEM, 500: _PROBLEM, 503: _PROBLEM},
)


class TenantList(WireModel):
    items: list[Tenant]
    next_marker: str | None = None


class UserList(WireModel):
    items: list[User]
    next_marker: str | None = None


class RoleBindingList(WireModel):
    items: list[RoleBinding]
    next_marker: str | None = None


def _service(request: Request) -> TenancyService:
    service: TenancyService = request.app.state.tenancy
    return service


def _scope(request: Request) -> str | None:
    """The tenant the caller is confined to; None (everything) for platform principals."""
    principal = request.scope.get("netweave.principal")
    return principal.tenant if isinstance(principal, Principal) else None


def _listing(page: RenderedPage) -> Response:
    body = b'{"items":[' + page.items + b'],"nextMarker":' + orjson.dumps(page.next_marker) + b"}"
    return Response(content=body, media_type=_JSON)


def _created(request: Request, record: pydantic.BaseModel, route: str, **ids: str) -> Response:
    location = str(request.url_for(route, **ids))
    return Response(
        content=orjson.dumps(to_wire(record)),
        status_code=201,
        media_type=_JSON,
        headers={"Location": location},
    )


def _object(body: bytes) -> Response:
    return Response(content=body, media_type=_JSON)


# -- tenants --------------------------------------------------------------------------------


@router.get("/tenants", response_model=TenantList, operation_id="listTenants")
async def list_tenants(request: Request) -> Response:
    query = list_query(request.query_params)
    return _listing(await _service(request).list_tenants(query, scope=_scope(request)))


@router.post(
    "/tenants",
    status_code=201,
    response_model=Tenant,
    responses=_CREATED,
    operation_id="createTenant",
)
async def create_tenant(request: Request, body: TenantCreate) -> Response:
    tenant = await _service(request).create_tenant(body, scope=_scope(request))
    return _created(request, tenant, "get_tenant", tenantId=tenant.tenant_id)


@router.get(
    "/tenants/{tenantId}", response_model=Tenant, responses=_NOT_FOUND, operation_id="getTenant"
)
async def get_tenant(request: Request, tenantId: str) -> Response:
    selection = field_params(request.query_params)
    return _object(await _service(request).get_tenant(tenantId, selection, scope=_scope(request)))


@router.patch(
    "/tenants/{tenantId}",
    response_model=Tenant,
    responses=_NOT_FOUND,
    operation_id="patchTenant",
    summary="Change a tenant with a JSON merge patch (name, description, status, quotas)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {
                    "schema": TenantPatch.model_json_schema(by_alias=True)
                }
            },
        }
    },
)
async def update_tenant(request: Request, tenantId: str) -> Response:
    try:
        patch = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequestError("the body is not valid JSON") from None
    tenant = await _service(request).update_tenant(tenantId, patch, scope=_scope(request))
    return Response(content=orjson.dumps(to_wire(tenant)), media_type=_JSON)


@router.delete(
    "/tenants/{tenantId}",
    status_code=204,
    responses=_NOT_FOUND,
    operation_id="deleteTenant",
    summary="Delete a tenant together with its users and the role bindings in it",
)
async def delete_tenant(request: Request, tenantId: str) -> Response:
    await _service(request).delete_tenant(tenantId, scope=_scope(request))
    return Response(status_code=204)


# -- users ----------------------------------------------------------------------------------


@router.get(
    "/tenants/{tenantId}/users",
    response_model=UserList,
    responses=_NOT_FOUND,
    operation_id="listTenantUsers",
)
async def list_users(request: Request, tenantId: str) -> Response:
    query = list_query(request.query_params)
    return _listing(await _service(request).list_users(tenantId, query, scope=_scope(request)))


@router.post(
    "/tenants/{tenantId}/users",
    status_code=201,
    response_model=User,
    responses={**_NOT_FOUND, **_CREATED},
    operation_id="createTenantUser",
)
async def create_user(request: Request, tenantId: str, body: UserCreate) -> Response:
    user = await _service(request).create_user(tenantId, body, scope=_scope(request))
    return _created(request, user, "get_user", tenantId=tenantId, userId=user.user_id)


@router.get(
    "/tenants/{tenantId}/users/{userId}",
    response_model=User,
    responses=_NOT_FOUND,
    operation_id="getTenantUser",
)
async def get_user(request: Request, tenantId: str, userId: str) -> Response:
    selection = field_params(request.query_params)
    service = _service(request)
    return _object(await service.get_user(tenantId, userId, selection, scope=_scope(request)))


@router.delete(
    "/tenants/{tenantId}/users/{userId}",
    status_code=204,
    responses=_NOT_FOUND,
    operation_id="deleteTenantUser",
)
async def delete_user(request: Request, tenantId: str, userId: str) -> Response:
    await _service(request).delete_user(tenantId, userId, scope=_scope(request))
    return Response(status_code=204)


# -- role bindings --------------------------------------------------------------------------


@router.get("/roleBindings", response_model=RoleBindingList, operation_id="listRoleBindings")
async def list_role_bindings(request: Request) -> Response:
    query = list_query(request.query_params)
    return _listing(await _service(request).list_bindings(query, scope=_scope(request)))


@router.post(
    "/roleBindings",
    status_code=201,
    response_model=RoleBinding,
    responses={**_NOT_FOUND, **_CREATED},
    operation_id="createRoleBinding",
)
async def create_role_binding(request: Request, body: RoleBindingCreate) -> Response:
    binding = await _service(request).create_binding(body, scope=_scope(request))
    return _created(request, binding, "get_role_binding", roleBindingId=binding.role_binding_id)


@router.get(
    "/roleBindings/{roleBindingId}",
    response_model=RoleBinding,
    responses=_NOT_FOUND,
    operation_id="getRoleBinding",
)
async def get_role_binding(request: Request, roleBindingId: str) -> Response:
    selection = field_params(request.query_params)
    service = _service(request)
    return _object(await service.get_binding(roleBindingId, selection, scope=_scope(request)))


@router.delete(
    "/roleBindings/{roleBindingId}",
    status_code=204,
    responses=_NOT_FOUND,
    operation_id="deleteRoleBinding",
)
async def delete_role_binding(request: Request, roleBindingId: str) -> Response:
    await _service(request).delete_binding(roleBindingId, scope=_scope(request))
    return Response(status_code=204)
