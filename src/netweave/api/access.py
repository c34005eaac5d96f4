"""The access middleware: authentication, authorisation, tenant rate limits and auditing.

It sits inside the request-context middleware (so every answer it gives still carries
a request id, security headers and metrics) and in front of every router.  Per request:

1. the route's permission is looked up in the one table of
   :data:`netweave.security.rbac.ROUTE_PERMISSIONS`; public routes (probes, metrics,
   the API description) pass straight through;
2. the :class:`~netweave.security.authentication.Authenticator` names the principal
   (401 with ``WWW-Authenticate`` when it cannot; 403 for a suspended or unknown tenant);
3. the principal must hold the permission (403); a tenant principal holds tenant roles
   only within its own tenant, and the routers then show it only its tenant's objects;
4. a tenant's requests draw from its token bucket (429 with ``Retry-After``);
5. the request runs; a mutating request, and every refusal of steps 2 and 3, becomes
   an audit record.

Every refusal also counts in ``netweave_auth_failures_total{reason}`` (see
:func:`authentication_failure` for how a failed authentication gets its reason).

A path no route serves, or a method the path does not allow, still needs an
authenticated principal; the routers then answer 404 or 405.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netweave.api.middleware import REQUEST_ID_SCOPE_KEY
from netweave.api.problems import send_problem
from netweave.errors import ForbiddenError, O2Error, TooManyRequestsError
from netweave.observability import tracing
from netweave.observability.logging import get_logger
from netweave.observability.metrics import Metrics
from netweave.security.audit import AuditRecord, AuditTrail, Outcome
from netweave.security.authentication import Authenticator
from netweave.security.principal import ANONYMOUS, OPEN, SCOPE_KEY, Principal
from netweave.security.ratelimit import RateLimiter
from netweave.security.rbac import (
    AUTHENTICATED,
    PUBLIC,
    ROUTE_PERMISSIONS,
    RouteTable,
    allowed,
)

__all__ = ["AccessMiddleware", "AccessPolicy", "TenantLimits", "authentication_failure"]

_log = get_logger("netweave.access")

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: (requests per second, burst) of a tenant; rate 0 means unlimited
TenantLimits = Callable[[str], Awaitable[tuple[float, int]]]


class AccessPolicy:
    """What the access middleware needs, built in the application's lifespan."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        audit: AuditTrail,
        limiter: RateLimiter,
        limits: TenantLimits,
    ) -> None:
        self.authenticator = authenticator
        #: no authentication configured: every request is the open principal
        self.open = authenticator.mode == "open"
        self.audit = audit
        self.limiter = limiter
        self.limits = limits


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes = RouteTable(ROUTE_PERMISSIONS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        policy: AccessPolicy | None = getattr(scope["app"].state, "access", None)
        if policy is None:  # the lifespan has not run: nothing can be authorised yet
            raise RuntimeError("the access policy is not ready")
        if policy.open and method not in _MUTATING:
            # nothing to check and nothing to audit: the hot path of an open gateway
            scope[SCOPE_KEY] = OPEN
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        found = self.routes.lookup(method, path)
        permission = found[1] if found is not None else None
        if permission is PUBLIC:
            await self.app(scope, receive, send)
            return
        if permission is AUTHENTICATED:
            action = "batch"
        elif permission is not None:
            action = str(permission)
        else:
            action = f"{method} {path}"

        try:
            principal = await policy.authenticator.authenticate(scope)
        except O2Error as error:  # 401, 403, or 503 when keys or tenancy cannot be loaded
            reason = authentication_failure(
                error,
                mode=policy.authenticator.mode,
                token=_has_authorization(scope),
                certificate=policy.authenticator.peer(scope) is not None,
            )
            await self._refuse(policy, scope, send, error, ANONYMOUS, "authentication", reason)
            return
        scope[SCOPE_KEY] = principal
        structlog.contextvars.bind_contextvars(principal=principal.subject, tenant=principal.tenant)

        if (
            permission is not None
            and permission is not AUTHENTICATED
            and not allowed(principal, permission, tenant=principal.tenant)
        ):
            denied = ForbiddenError(f"this operation requires the permission {permission}")
            await self._refuse(policy, scope, send, denied, principal, action, "forbidden")
            return

        if principal.tenant is not None:
            try:
                limited = await self._over_rate(policy, principal.tenant)
            except O2Error as error:
                limited = error
            if limited is not None:
                _count(scope, "rate_limited" if limited.status == 429 else "unavailable")
                await send_problem(send, limited, scope)
                return

        if method not in _MUTATING:
            await self.app(scope, receive, send)
            return
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            done: Outcome = "success" if status < 400 else "failure"
            await policy.audit.record(_record(scope, principal, action, done, status))

    @staticmethod
    async def _over_rate(policy: AccessPolicy, tenant: str) -> O2Error | None:
        rate, burst = await policy.limits(tenant)
        if rate <= 0:
            return None
        wait = await policy.limiter.acquire(tenant, rate=rate, burst=burst)
        if wait <= 0:
            return None
        return TooManyRequestsError(
            f"tenant {tenant} is over its request rate of {rate:g}/s", retry_after=math.ceil(wait)
        )

    async def _refuse(
        self,
        policy: AccessPolicy,
        scope: Scope,
        send: Send,
        error: O2Error,
        principal: Principal,
        action: str,
        reason: str,
    ) -> None:
        _count(scope, reason)
        await send_problem(send, error, scope)
        outcome: Outcome = "denied" if isinstance(error, ForbiddenError) else "failure"
        _log.info("access refused", status=error.status, reason=error.detail, action=action)
        await policy.audit.record(
            _record(scope, principal, action, outcome, error.status, detail=error.detail)
        )


def authentication_failure(error: O2Error, *, mode: str, token: bool, certificate: bool) -> str:
    """The ``reason`` label of a failed authentication, from the error's status and the
    credentials the request carried (``token``: an ``Authorization`` header; ``certificate``:
    a verified client certificate) -- never from the error's text, which may change.

    403 is a tenant refused (not registered, suspended, or not the token subject's tenant);
    5xx is ``unavailable`` (signing keys or the tenancy directory could not be loaded).  A
    401 is ``invalid_certificate`` or ``invalid_token`` when the credential the mode checks
    was sent, else ``missing_credentials``; in mode ``both`` a request without its
    certificate is ``missing_credentials`` whatever its token.
    """
    if error.status == 403:
        return "tenant_refused"
    if error.status >= 500:
        return "unavailable"
    if mode == "mtls" or (mode == "any" and not token):
        return "invalid_certificate" if certificate else "missing_credentials"
    if not token or (mode == "both" and not certificate):
        return "missing_credentials"
    return "invalid_token"


def _has_authorization(scope: Scope) -> bool:
    return any(key == b"authorization" and value.strip() for key, value in scope["headers"])


def _count(scope: Scope, reason: str) -> None:
    """Count one refusal (the app's metrics live on its state, next to the policy) and
    name its reason on the request's span."""
    metrics: Metrics | None = getattr(scope["app"].state, "metrics", None)
    if metrics is not None:
        metrics.auth_failures.labels(reason).inc()
    tracing.set_attributes({"netweave.auth.failure": reason})


def _record(
    scope: Scope,
    principal: Principal,
    action: str,
    outcome: Outcome,
    status: int,
    *,
    detail: str | None = None,
) -> AuditRecord:
    client = scope.get("client")
    return AuditRecord.new(
        request_id=scope.get(REQUEST_ID_SCOPE_KEY, ""),
        principal=principal.subject,
        auth_methods=sorted(principal.auth),
        tenant_id=principal.tenant,
        action=action,
        method=scope["method"],
        target=scope["path"],
        outcome=outcome,
        status=status,
        source_address=client[0] if client else "",
        detail=detail,
    )
