"""Roles, permissions and the one table saying which permission each route needs.

A permission is ``resource:verb`` (``resourcePools:read``, ``subscriptions:create``).
Roles are fixed sets of permissions:

* ``platform-admin`` (system): all permissions;
* ``operator`` (system): every ``:read`` except ``audit:read``, and managing subscriptions;
* ``viewer`` (system): every ``:read`` except ``audit:read``;
* ``tenant-admin``: all permissions except managing tenants and role bindings;
* ``tenant-operator``: as ``operator``;
* ``tenant-viewer``: as ``viewer``.

A tenant role grants its permissions only for actions in the principal's own tenant:
``allowed(p, perm, tenant=t)`` asks whether ``p`` may do ``perm`` in tenant ``t``, where
``t=None`` means platform scope (e.g. creating a tenant), which no tenant role reaches.
Callers serving a tenant principal's list or get pass that principal's tenant and let
the tenancy layer filter what it sees.

Audit records are readable by admins only, and tenants and role bindings are managed by
platform admins only (issue 5 §4, §6).

:data:`ROUTE_PERMISSIONS` names, for every ``(method, path template)`` the application
serves, the permission it needs or :data:`PUBLIC`; a test enumerates the application's
routes against it.  Like starlette's ``requires()``, :func:`require` raises 401 for an
anonymous principal and 403 for an authenticated one without the permission.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Final, Literal, NewType, get_args

from netweave.errors import ForbiddenError, UnauthenticatedError
from netweave.security.principal import Principal

__all__ = [
    "ALL_PERMISSIONS",
    "AUTHENTICATED",
    "PUBLIC",
    "RESOURCES",
    "ROLES",
    "ROLE_PERMISSIONS",
    "ROUTE_PERMISSIONS",
    "SYSTEM_ROLES",
    "TENANT_EQUIVALENT",
    "TENANT_ROLES",
    "VERBS",
    "Permission",
    "Public",
    "Resource",
    "RoutePermission",
    "RouteTable",
    "Verb",
    "allowed",
    "permission",
    "permission_for",
    "require",
]

Resource = Literal[
    "resourcePools",
    "resources",
    "resourceTypes",
    "deploymentManagers",
    "ocloud",
    "subscriptions",
    "alarms",
    "tenants",
    "roleBindings",
    "audit",
    "deliveries",
]
Verb = Literal["read", "create", "update", "delete"]
RESOURCES: Final[tuple[Resource, ...]] = get_args(Resource)
VERBS: Final[tuple[Verb, ...]] = get_args(Verb)

#: ``resource:verb``; build one with :func:`permission`
Permission = NewType("Permission", str)


def permission(resource: Resource, verb: Verb) -> Permission:
    """The permission to ``verb`` a ``resource``; refuses names outside the vocabulary."""
    if resource not in RESOURCES or verb not in VERBS:
        raise ValueError(f"unknown permission {resource}:{verb}")
    return Permission(f"{resource}:{verb}")


def _parse(text: str) -> Permission:
    resource, _, verb = text.partition(":")
    if resource not in RESOURCES or verb not in VERBS:
        raise ValueError(f"unknown permission {text!r}")
    return Permission(text)


ALL_PERMISSIONS: Final = frozenset(permission(r, v) for r in RESOURCES for v in VERBS)
_READ_ALL = frozenset(permission(r, "read") for r in RESOURCES) - {permission("audit", "read")}
_MANAGE_SUBSCRIPTIONS = frozenset(
    permission("subscriptions", v) for v in ("create", "update", "delete")
) | {
    # alarm subscriptions: an SMO that subscribes to inventory changes subscribes to alarms
    permission("alarms", "create"),
    permission("alarms", "delete"),
    # and operates them: acknowledging, clearing a MANUAL alarm
    permission("alarms", "update"),
}
#: permissions only platform-scope roles hold: tenants and who may do what are the platform's
_PLATFORM_ONLY = frozenset(
    permission(r, v) for r in ("tenants", "roleBindings") for v in ("create", "update", "delete")
)

SYSTEM_ROLES: Final[dict[str, frozenset[Permission]]] = {
    "platform-admin": ALL_PERMISSIONS,
    "operator": _READ_ALL | _MANAGE_SUBSCRIPTIONS,
    "viewer": _READ_ALL,
}
TENANT_ROLES: Final[dict[str, frozenset[Permission]]] = {
    "tenant-admin": ALL_PERMISSIONS - _PLATFORM_ONLY,
    "tenant-operator": _READ_ALL | _MANAGE_SUBSCRIPTIONS,
    "tenant-viewer": _READ_ALL,
}
ROLE_PERMISSIONS: Final[dict[str, frozenset[Permission]]] = {**SYSTEM_ROLES, **TENANT_ROLES}
ROLES: Final = frozenset(ROLE_PERMISSIONS)


#: what a system role means for a principal that belongs to a tenant
TENANT_EQUIVALENT: Final = {
    "platform-admin": "tenant-admin",
    "operator": "tenant-operator",
    "viewer": "tenant-viewer",
}


def allowed(principal: Principal, perm: Permission, *, tenant: str | None) -> bool:
    """Whether ``principal`` may do ``perm`` in ``tenant`` (``None``: platform scope).

    A principal that belongs to a tenant acts only within it: a system role it holds (a
    token's ``role:o2ims-admin`` scope, say) counts as the matching tenant role, so no
    tenant's credentials can reach another tenant or the platform's administration.
    """
    if not principal.is_authenticated:
        return False
    roles: Iterable[str] = principal.roles
    if principal.tenant is not None:
        roles = {TENANT_EQUIVALENT.get(role, role) for role in roles}
    for role in roles:
        if perm in SYSTEM_ROLES.get(role, ()):
            return True
        if (
            perm in TENANT_ROLES.get(role, ())
            and principal.tenant is not None
            and tenant == principal.tenant
        ):
            return True
    return False


def require(principal: Principal, perm: Permission, *, tenant: str | None = None) -> None:
    """Raise 401 for an anonymous principal, 403 when ``perm`` in ``tenant`` is not allowed."""
    if not principal.is_authenticated:
        raise UnauthenticatedError(
            "authentication required", headers={"WWW-Authenticate": 'Bearer realm="netweave"'}
        )
    if not allowed(principal, perm, tenant=tenant):
        raise ForbiddenError(f"this operation requires the permission {perm}")


class Public(enum.Enum):
    """Markers of routes that need no permission of their own."""

    PUBLIC = "public"  #: anyone, without credentials
    #: any authenticated principal; what it carries is authorised item by item (batch)
    AUTHENTICATED = "authenticated"


#: the permission of a route that anyone may call
PUBLIC: Final = Public.PUBLIC
#: the permission of a route any authenticated principal may call
AUTHENTICATED: Final = Public.AUTHENTICATED
RoutePermission = Permission | Literal[Public.PUBLIC, Public.AUTHENTICATED]

_INVENTORY = "/o2ims-infrastructureInventory"
_INVENTORY_V1 = f"{_INVENTORY}/v1"
_SUBSCRIPTIONS = f"{_INVENTORY_V1}/subscriptions"
_DEAD_LETTERS = "/o2ims/v1/deliveries/dead"


def _inventory_routes() -> dict[tuple[str, str], RoutePermission]:
    collections: dict[str, Resource] = {
        # the item path under /v1 (its list is the parent path) -> the resource read
        "resourceTypes/{resourceTypeId}": "resourceTypes",
        "resourcePools/{resourcePoolId}": "resourcePools",
        "resourcePools/{resourcePoolId}/resources/{resourceId}": "resources",
        "deploymentManagers/{deploymentManagerId}": "deploymentManagers",
        # locations and sites describe the O-Cloud itself
        "locations/{globalLocationId}": "ocloud",
        "oCloudSites/{oCloudSiteId}": "ocloud",
    }
    routes: dict[tuple[str, str], RoutePermission] = {
        ("GET", f"{_INVENTORY}/api_versions"): permission("ocloud", "read"),
        ("GET", f"{_INVENTORY_V1}/api_versions"): permission("ocloud", "read"),
        ("GET", _INVENTORY_V1): permission("ocloud", "read"),
    }
    for item_path, resource in collections.items():
        list_path = item_path.rsplit("/", 1)[0]
        routes[("GET", f"{_INVENTORY_V1}/{list_path}")] = permission(resource, "read")
        routes[("GET", f"{_INVENTORY_V1}/{item_path}")] = permission(resource, "read")
    return routes


def _gateway_routes() -> dict[tuple[str, str], RoutePermission]:
    """``/o2ims/v1``: the inventory with the gateway envelope, and its writes."""
    v1 = "/o2ims/v1"
    pools = f"{v1}/resourcePools"
    pool = f"{pools}/{{resourcePoolId}}"
    routes: dict[tuple[str, str], RoutePermission] = {
        ("GET", pools): _parse("resourcePools:read"),
        ("POST", pools): _parse("resourcePools:create"),
        ("GET", pool): _parse("resourcePools:read"),
        ("PUT", pool): _parse("resourcePools:update"),
        ("PATCH", pool): _parse("resourcePools:update"),
        ("DELETE", pool): _parse("resourcePools:delete"),
        ("GET", f"{pool}/resources"): _parse("resources:read"),
        ("GET", f"{v1}/resources"): _parse("resources:read"),
        ("POST", f"{v1}/resources"): _parse("resources:create"),
        ("GET", f"{v1}/resources/{{resourceId}}"): _parse("resources:read"),
        ("DELETE", f"{v1}/resources/{{resourceId}}"): _parse("resources:delete"),
        # an operation is the progress of a resource write
        ("GET", f"{v1}/operations/{{operationId}}"): _parse("resources:read"),
    }
    for collection, resource in (
        ("resourceTypes/{resourceTypeId}", "resourceTypes"),
        ("deploymentManagers/{deploymentManagerId}", "deploymentManagers"),
    ):
        perm = permission(resource, "read")  # type: ignore[arg-type]
        routes[("GET", f"{v1}/{collection.split('/')[0]}")] = perm
        routes[("GET", f"{v1}/{collection}")] = perm
    return routes


def _monitoring_routes() -> dict[tuple[str, str], RoutePermission]:
    """``/o2ims-infrastructureMonitoring`` and the alarm dictionaries of the inventory.

    Alarm subscriptions are managed with the ``alarms`` permissions.  The alarm service
    configuration (how long cleared alarms are kept) is the O-Cloud's, shared by every
    tenant: changing it takes ``tenants:update``, which only platform roles hold.
    """
    monitoring = "/o2ims-infrastructureMonitoring"
    v1 = f"{monitoring}/v1"
    alarm = f"{v1}/alarms/{{alarmEventRecordId}}"
    subscriptions = f"{v1}/alarmSubscriptions"
    configuration = f"{v1}/alarmServiceConfiguration"
    dictionaries = f"{_INVENTORY_V1}/alarmDictionaries"
    return {
        ("GET", f"{monitoring}/api_versions"): _parse("alarms:read"),
        ("GET", f"{v1}/api_versions"): _parse("alarms:read"),
        ("GET", f"{v1}/alarms"): _parse("alarms:read"),
        ("GET", alarm): _parse("alarms:read"),
        ("PATCH", alarm): _parse("alarms:update"),
        ("GET", subscriptions): _parse("alarms:read"),
        ("POST", subscriptions): _parse("alarms:create"),
        ("GET", f"{subscriptions}/{{alarmSubscriptionId}}"): _parse("alarms:read"),
        ("DELETE", f"{subscriptions}/{{alarmSubscriptionId}}"): _parse("alarms:delete"),
        ("GET", configuration): _parse("alarms:read"),
        ("PUT", configuration): _parse("tenants:update"),
        ("PATCH", configuration): _parse("tenants:update"),
        ("GET", f"{v1}/probableCauses"): _parse("alarms:read"),
        ("GET", f"{v1}/probableCauses/{{probableCauseId}}"): _parse("alarms:read"),
        ("GET", dictionaries): _parse("resourceTypes:read"),
        ("GET", f"{dictionaries}/{{alarmDictionaryId}}"): _parse("resourceTypes:read"),
        ("GET", f"{_INVENTORY_V1}/resourceTypes/{{resourceTypeId}}/alarmDictionary"): _parse(
            "resourceTypes:read"
        ),
    }


def _tenancy_routes() -> dict[tuple[str, str], RoutePermission]:
    tenants = "/o2ims/v1/tenants"
    tenant = f"{tenants}/{{tenantId}}"
    users = f"{tenant}/users"
    bindings = "/o2ims/v1/roleBindings"
    return {
        ("GET", tenants): _parse("tenants:read"),
        ("POST", tenants): _parse("tenants:create"),
        ("GET", tenant): _parse("tenants:read"),
        ("PATCH", tenant): _parse("tenants:update"),
        ("DELETE", tenant): _parse("tenants:delete"),
        # users are part of their tenant: reading them is reading the tenant
        ("GET", users): _parse("tenants:read"),
        ("POST", users): _parse("tenants:update"),
        ("GET", f"{users}/{{userId}}"): _parse("tenants:read"),
        ("DELETE", f"{users}/{{userId}}"): _parse("tenants:update"),
        ("GET", bindings): _parse("roleBindings:read"),
        ("POST", bindings): _parse("roleBindings:create"),
        ("GET", f"{bindings}/{{roleBindingId}}"): _parse("roleBindings:read"),
        ("DELETE", f"{bindings}/{{roleBindingId}}"): _parse("roleBindings:delete"),
    }


#: the permission each ``(method, path template)`` needs; HEAD is looked up as GET
ROUTE_PERMISSIONS: Final[dict[tuple[str, str], RoutePermission]] = {
    **_inventory_routes(),
    ("GET", _SUBSCRIPTIONS): _parse("subscriptions:read"),
    ("POST", _SUBSCRIPTIONS): _parse("subscriptions:create"),
    ("GET", f"{_SUBSCRIPTIONS}/{{subscriptionId}}"): _parse("subscriptions:read"),
    ("DELETE", f"{_SUBSCRIPTIONS}/{{subscriptionId}}"): _parse("subscriptions:delete"),
    ("GET", "/o2ims/v1/subscriptions"): _parse("subscriptions:read"),
    ("POST", "/o2ims/v1/subscriptions"): _parse("subscriptions:create"),
    ("GET", "/o2ims/v1/subscriptions/{subscriptionId}"): _parse("subscriptions:read"),
    ("PUT", "/o2ims/v1/subscriptions/{subscriptionId}"): _parse("subscriptions:update"),
    ("DELETE", "/o2ims/v1/subscriptions/{subscriptionId}"): _parse("subscriptions:delete"),
    **_tenancy_routes(),
    **_gateway_routes(),
    **_monitoring_routes(),
    # each operation of a batch is authorised (and audited) as if sent on its own
    ("POST", "/o2ims/v1/batch"): AUTHENTICATED,
    ("GET", "/o2ims/v1/audit/events"): _parse("audit:read"),
    ("GET", _DEAD_LETTERS): _parse("deliveries:read"),
    ("POST", f"{_DEAD_LETTERS}/{{deadLetterId}}/replay"): _parse("deliveries:update"),
    # operations: probes and scraping must work without credentials
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # the API description is the published O2-IMS contract, not tenant data
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
}


def permission_for(method: str, path_template: str) -> RoutePermission:
    """The permission a route needs; ``KeyError`` for a route with none declared."""
    method = method.upper()
    if method == "HEAD":
        method = "GET"
    return ROUTE_PERMISSIONS[(method, path_template)]


class RouteTable:
    """Finds the permission of a request from its method and concrete path.

    Literal paths are one dict lookup; templated paths are tried as anchored regexes
    whose parameters match one path segment.  ``lookup`` answers ``None`` for a path no
    route serves, or a method the path does not allow (the application then answers
    404 or 405 to an authenticated caller).
    """

    def __init__(self, permissions: dict[tuple[str, str], RoutePermission]) -> None:
        self._literal: dict[tuple[str, str], RoutePermission] = {}
        patterns: dict[str, dict[str, RoutePermission]] = {}
        for (method, template), perm in permissions.items():
            if "{" in template:
                patterns.setdefault(template, {})[method] = perm
            else:
                self._literal[(method, template)] = perm
        self._patterns = [
            (re.compile(_template_regex(template)), template, methods)
            for template, methods in patterns.items()
        ]

    def lookup(self, method: str, path: str) -> tuple[str, RoutePermission] | None:
        """``(template, permission)`` of the route serving ``method path``, or None."""
        method = method.upper()
        if method == "HEAD":
            method = "GET"
        perm = self._literal.get((method, path))
        if perm is not None:
            return path, perm
        for regex, template, methods in self._patterns:
            if regex.fullmatch(path):
                found = methods.get(method)
                return (template, found) if found is not None else None
        return None


def _template_regex(template: str) -> str:
    parts = re.split(r"{\w+}", template)
    return "[^/]+".join(re.escape(part) for part in parts)
