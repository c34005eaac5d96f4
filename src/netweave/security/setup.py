"""Building the security parts from the settings: one function the lifespan calls.

With the Redis store, tenancy records, audit records and rate-limit buckets live in the
same Redis (under the store's prefix) so that every replica shares them; with the
memory store they live in the process.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from netweave import __version__
from netweave.api.access import AccessPolicy
from netweave.config import ConfigError, Settings
from netweave.observability.logging import get_logger
from netweave.query import PageMarkers
from netweave.security.audit import AuditLog, AuditTrail
from netweave.security.authentication import Authenticator, parse_networks
from netweave.security.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from netweave.security.tenancy import (
    Directory,
    TenancySeed,
    TenancyStore,
    apply_seed,
    load_tenancy_file,
)
from netweave.security.tenancy_service import TenancyService
from netweave.security.tokens import TokenSettings, TokenValidator
from netweave.store.audit import InMemoryAuditLog, RedisAuditLog
from netweave.store.base import Store
from netweave.store.tenants import InMemoryTenancyStore, RedisTenancyStore

__all__ = ["Security", "build_security", "check_security", "token_settings"]

_log = get_logger("netweave.security")


class TenantQuotas:
    """A tenant's limits as the middleware and the services ask for them."""

    def __init__(self, directory: Directory, settings: Settings) -> None:
        self._directory = directory
        self._default_rate = settings.default_rate_limit
        self._default_burst = settings.default_rate_burst

    async def max_subscriptions(self, tenant_id: str) -> int | None:
        """The subscription quota of a tenant (None: no limit)."""
        tenant = await self._directory.tenant(tenant_id)
        return tenant.quotas.max_subscriptions if tenant is not None else 0

    async def max_resource_pools(self, tenant_id: str) -> int | None:
        """The resource pool quota of a tenant (None: no limit)."""
        tenant = await self._directory.tenant(tenant_id)
        return tenant.quotas.max_resource_pools if tenant is not None else 0

    async def tenant_exists(self, tenant_id: str) -> bool:
        return await self._directory.tenant(tenant_id) is not None

    async def limits(self, tenant_id: str) -> tuple[float, int]:
        """The request rate and burst of a tenant; rate 0 is unlimited."""
        tenant = await self._directory.tenant(tenant_id)
        quotas = tenant.quotas if tenant is not None else None
        rate = (quotas.requests_per_second if quotas else None) or self._default_rate
        burst = (quotas.burst if quotas else None) or self._default_burst
        return rate, burst or max(1, math.ceil(rate))


@dataclass
class Security:
    access: AccessPolicy
    tenancy: TenancyService
    audit: AuditTrail
    quotas: TenantQuotas
    limiter: RateLimiter
    closers: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def max_subscriptions(self) -> Callable[[str], Awaitable[int | None]]:
        return self.quotas.max_subscriptions

    async def aclose(self) -> None:
        await self.limiter.aclose()
        for client in self.closers:
            await client.aclose()


def token_settings(settings: Settings) -> TokenSettings | None:
    """The token validation the settings configure, or None (``ConfigError`` when invalid)."""
    if settings.token_issuer is None or settings.token_audience is None:
        return None
    audience = tuple(a.strip() for a in settings.token_audience.split(",") if a.strip())
    try:
        return TokenSettings(
            issuer=settings.token_issuer,
            audience=audience[0] if len(audience) == 1 else audience,
            algorithms=tuple(a.strip() for a in settings.token_algorithms.split(",") if a.strip()),
            jwks_url=settings.token_jwks_url,
            key_files=tuple(
                Path(p.strip()) for p in settings.token_key_files.split(",") if p.strip()
            ),
            leeway=settings.token_leeway,
            token_cache_ttl=settings.token_cache_ttl,
            token_cache_size=settings.token_cache_size,
            tenant_claim=settings.token_tenant_claim,
            roles_claim=settings.token_roles_claim,
            scope_claim=settings.token_scope_claim,
            role_map=settings.token_role_map,
        )
    except ValueError as exc:
        raise ConfigError(
            f"invalid configuration: NETWEAVE_TOKEN_* (token settings): {exc}"
        ) from None


def check_security(settings: Settings) -> None:
    """Raise :class:`ConfigError` (one line) for token settings or a tenancy file that
    cannot work, before anything starts."""
    token_settings(settings)
    if settings.tenancy_file is not None:
        _load_seed(settings.tenancy_file)


def _load_seed(path: Path) -> TenancySeed:
    try:
        return load_tenancy_file(path)
    except ValueError as exc:
        raise ConfigError(
            f"invalid configuration: NETWEAVE_TENANCY_FILE (tenancy_file): {exc}"
        ) from None


async def build_security(settings: Settings, store: Store, *, markers: PageMarkers) -> Security:
    client = getattr(store, "client", None)  # the Redis store shares its connection
    prefix = settings.store_prefix
    tenancy_store: TenancyStore
    audit_log: AuditLog
    limiter: RateLimiter
    if client is not None:
        tenancy_store = RedisTenancyStore(client, prefix=prefix)
        audit_log = RedisAuditLog(client, prefix=prefix)
        limiter = RedisRateLimiter(client, prefix=prefix)
    else:
        tenancy_store = InMemoryTenancyStore()
        audit_log = InMemoryAuditLog()
        limiter = MemoryRateLimiter()
    if settings.tenancy_file is not None:
        await apply_seed(tenancy_store, _load_seed(settings.tenancy_file))
        _log.info("tenancy file applied", path=str(settings.tenancy_file))
    directory = Directory(tenancy_store)
    closers: list[httpx.AsyncClient] = []
    tokens = None
    token_config = token_settings(settings)
    if token_config is not None:
        http = httpx.AsyncClient(
            # the system's trust store (SSL_CERT_FILE and SSL_CERT_DIR are honoured): an
            # operator's private IdP CA is installed there, not in certifi's bundle
            verify=ssl.create_default_context(),
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": f"netweave/{__version__}"},
        )
        closers.append(http)
        tokens = TokenValidator(token_config, http=http)
    authenticator = Authenticator(
        mode=settings.effective_auth_mode,
        directory=directory,
        tokens=tokens,
        proxies=parse_networks(settings.trusted_proxies),
        cache_ttl=settings.auth_cache_ttl,
    )
    audit = AuditTrail(
        audit_log,
        retention=settings.audit_retention,
        markers=markers,
        page_size=settings.max_page_size,
    )
    quotas = TenantQuotas(directory, settings)
    return Security(
        access=AccessPolicy(
            authenticator=authenticator, audit=audit, limiter=limiter, limits=quotas.limits
        ),
        tenancy=TenancyService(
            tenancy_store, directory=directory, markers=markers, page_size=settings.max_page_size
        ),
        audit=audit,
        quotas=quotas,
        limiter=limiter,
        closers=closers,
    )
