"""Roles and permissions: the full matrix, tenant confinement, and the route registry."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Route

from netweave.app import create_app
from netweave.config import Settings
from netweave.errors import ForbiddenError, UnauthenticatedError
from netweave.security.principal import ANONYMOUS, Principal
from netweave.security.rbac import (
    ALL_PERMISSIONS,
    AUTHENTICATED,
    PUBLIC,
    RESOURCES,
    ROLES,
    ROUTE_PERMISSIONS,
    TENANT_EQUIVALENT,
    VERBS,
    Permission,
    allowed,
    permission,
    permission_for,
    require,
)

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def expected(role: str, perm: str) -> bool:
    """What each role may do, written out independently of the module's tables."""
    resource, verb = perm.split(":")
    reads = verb == "read" and resource != "audit"
    subscriptions = resource == "subscriptions" or resource == "alarms"
    platform_only = resource in {"tenants", "roleBindings"} and verb != "read"
    return {
        "platform-admin": True,
        "operator": reads or subscriptions,
        "viewer": reads,
        "tenant-admin": not platform_only,
        "tenant-operator": reads or subscriptions,
        "tenant-viewer": reads,
    }[role]


def who(*roles: str, tenant: str | None = "acme") -> Principal:
    return Principal(
        subject="someone", tenant=tenant, roles=frozenset(roles), auth=frozenset({"token"})
    )


def test_vocabulary() -> None:
    assert len(RESOURCES) == 11
    assert set(VERBS) == {"read", "create", "update", "delete"}
    assert len(ALL_PERMISSIONS) == 44
    assert ROLES == {
        "platform-admin",
        "operator",
        "viewer",
        "tenant-admin",
        "tenant-operator",
        "tenant-viewer",
    }
    assert permission("resourcePools", "read") == "resourcePools:read"
    with pytest.raises(ValueError, match="unknown permission"):
        permission("widgets", "read")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown permission"):
        permission("resourcePools", "patch")  # type: ignore[arg-type]


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("perm", sorted(ALL_PERMISSIONS))
def test_matrix(role: str, perm: Permission) -> None:
    principal = who(role, tenant="acme")
    want = expected(role, perm)
    if role.startswith("tenant-"):
        assert allowed(principal, perm, tenant="acme") is want
        # confined to its own tenant: never another tenant, never platform scope
        assert allowed(principal, perm, tenant="globex") is False
        assert allowed(principal, perm, tenant=None) is False
        # and a tenant role without a tenant grants nothing at all
        assert allowed(who(role, tenant=None), perm, tenant=None) is False
    else:
        platform = who(role, tenant=None)
        for tenant in ("acme", "globex", None):
            assert allowed(platform, perm, tenant=tenant) is want
        # a principal of a tenant holding a system role acts as the tenant role within it
        equivalent = TENANT_EQUIVALENT[role]
        assert allowed(principal, perm, tenant="acme") is expected(equivalent, perm)
        assert allowed(principal, perm, tenant="globex") is False
        assert allowed(principal, perm, tenant=None) is False


@pytest.mark.parametrize("perm", sorted(ALL_PERMISSIONS))
def test_no_roles_or_unknown_roles_grant_nothing(perm: Permission) -> None:
    for principal in (who(), who("root", "admin", "o2ims-admin"), ANONYMOUS):
        for tenant in ("acme", None):
            assert allowed(principal, perm, tenant=tenant) is False


def test_roles_combine() -> None:
    principal = who("viewer", "tenant-operator", tenant="acme")
    create = permission("subscriptions", "create")
    assert allowed(principal, permission("resourcePools", "read"), tenant="acme")
    assert not allowed(principal, permission("resourcePools", "read"), tenant=None)
    assert allowed(principal, create, tenant="acme")
    assert not allowed(principal, create, tenant="globex")
    assert not allowed(principal, create, tenant=None)


def test_require() -> None:
    read = permission("resourcePools", "read")
    require(who("viewer", tenant=None), read)
    require(who("tenant-viewer"), read, tenant="acme")

    with pytest.raises(UnauthenticatedError) as unauthenticated:
        require(ANONYMOUS, read)
    assert unauthenticated.value.status == 401
    assert unauthenticated.value.headers["WWW-Authenticate"].startswith("Bearer")

    # an anonymous principal that somehow holds roles is still not authenticated
    pretender = Principal("x", None, frozenset({"platform-admin"}), frozenset())
    assert not allowed(pretender, read, tenant=None)
    with pytest.raises(UnauthenticatedError):
        require(pretender, read)

    with pytest.raises(ForbiddenError) as forbidden:
        require(who("viewer", tenant=None), permission("subscriptions", "create"))
    assert forbidden.value.status == 403
    assert "subscriptions:create" in forbidden.value.detail
    with pytest.raises(ForbiddenError):
        require(who("tenant-admin"), read, tenant="globex")
    with pytest.raises(ForbiddenError):
        require(who("tenant-admin"), permission("tenants", "create"))


def test_anonymous() -> None:
    assert not ANONYMOUS.is_authenticated
    assert ANONYMOUS.roles == frozenset()
    assert ANONYMOUS.tenant is None


def test_permission_for() -> None:
    path = "/o2ims-infrastructureInventory/v1/resourcePools/{resourcePoolId}"
    assert permission_for("get", path) == "resourcePools:read"
    assert permission_for("HEAD", path) == "resourcePools:read"
    assert permission_for("GET", "/healthz") is PUBLIC
    with pytest.raises(KeyError):
        permission_for("DELETE", path)


def _app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings())
    routes: set[tuple[str, str]] = set()
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    for path, operations in paths.items():
        routes.update((method.upper(), path) for method in operations if method in HTTP_METHODS)
    for route in app.routes:
        # FastAPI's own routes (openapi.json, docs, redoc) are kept out of the schema
        if isinstance(route, Route) and not route.include_in_schema:
            routes.update(
                (method, route.path) for method in route.methods or () if method != "HEAD"
            )
        # a hidden route inside an included router would escape the enumeration above
        router = getattr(route, "original_router", None)
        for inner in getattr(router, "routes", ()):
            assert getattr(inner, "include_in_schema", True), f"hidden route {inner}"
    return routes


def test_every_route_declares_a_permission() -> None:
    routes = _app_routes()
    assert ("GET", "/openapi.json") in routes
    assert ("GET", "/docs") in routes
    assert ("POST", "/o2ims-infrastructureInventory/v1/subscriptions") in routes
    undeclared = sorted(routes - ROUTE_PERMISSIONS.keys())
    assert not undeclared, f"routes without a permission in ROUTE_PERMISSIONS: {undeclared}"
    stale = sorted(ROUTE_PERMISSIONS.keys() - routes)
    assert not stale, f"ROUTE_PERMISSIONS names routes the app does not serve: {stale}"


def test_route_permissions_are_known() -> None:
    for route, perm in ROUTE_PERMISSIONS.items():
        assert perm is PUBLIC or perm is AUTHENTICATED or perm in ALL_PERMISSIONS, route
    # only the batch carries its own, per-item authorisation
    assert [r for r, p in ROUTE_PERMISSIONS.items() if p is AUTHENTICATED] == [
        ("POST", "/o2ims/v1/batch")
    ]
    public = {path for (_, path), perm in ROUTE_PERMISSIONS.items() if perm is PUBLIC}
    assert public == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
    # nothing that changes state is public, and every mutation needs a non-read verb
    for (method, _), perm in ROUTE_PERMISSIONS.items():
        if method != "GET":
            assert perm is not PUBLIC
            assert perm is AUTHENTICATED or not perm.endswith(":read")
