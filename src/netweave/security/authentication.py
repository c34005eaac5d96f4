"""Who is calling: the principal of a request, from its client certificate and/or token.

:class:`Authenticator` implements ``NETWEAVE_AUTH_MODE``:

``open``
    nothing is configured: every request is :data:`~netweave.security.principal.OPEN`.
``mtls``
    the verified client certificate (from the TLS handshake, or from
    ``X-Forwarded-Client-Cert`` when the direct peer is a trusted proxy) is the principal.
``token``
    an OAuth2 bearer token (JWT) is the principal.
``any``
    a token when one is sent, else the client certificate.
``both``
    a valid token *and* a verified client certificate are required; the token names
    the principal.

A certificate names a principal by its URI SANs (SPIFFE ids), DNS SANs, e-mail SANs and
subject DN, in that order; the tenancy directory maps the first registered one to a user
of a tenant, and role bindings of any of them give the roles.  A token names its
principal by ``sub``; its tenant and roles come from its claims (see
:mod:`netweave.security.tokens`), completed by the directory's user and role bindings.

A principal of a tenant that is not registered, or is suspended, is refused (403).

Successful authentications are remembered for ``cache_ttl`` seconds (one second by
default, never past a token's expiry), keyed by the ``Authorization`` header and the
client certificate, and forgotten as soon as the tenancy directory changes on this
replica; a change made on another replica takes effect here within the directory's
refresh interval plus ``cache_ttl``.  An SMO reusing its token and connection thus pays
for the signature check and the lookups once per second, not once per request.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from netweave.errors import ForbiddenError, UnauthenticatedError
from netweave.security.principal import OPEN, AuthMethod, Principal
from netweave.security.tenancy import Directory, Identity, roles_for
from netweave.security.tls import (
    PEER_SCOPE_KEY,
    PeerIdentity,
    peer_from_forwarded_header,
    trusted_proxy,
)
from netweave.security.tokens import TokenValidator

__all__ = ["VIA_PROXY_SCOPE_KEY", "AuthMode", "Authenticator", "parse_networks"]

#: where the request-context middleware records the trusted proxy a request came through
VIA_PROXY_SCOPE_KEY = "netweave.via_proxy"

AuthMode = Literal["open", "mtls", "token", "any", "both"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_XFCC = b"x-forwarded-client-cert"
_AUTHORIZATION = b"authorization"
_REALM = 'realm="netweave"'


def parse_networks(text: str) -> list[Network]:
    """Comma-separated addresses or CIDRs (``ValueError`` on a bad one)."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class Authenticator:
    def __init__(
        self,
        *,
        mode: AuthMode,
        directory: Directory,
        tokens: TokenValidator | None = None,
        proxies: Sequence[Network] = (),
        cache_ttl: float = 1.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if mode in ("token", "any", "both") and tokens is None:
            raise ValueError(f"auth mode {mode} needs a token validator")
        self.mode = mode
        self._directory = directory
        self._tokens = tokens
        self._proxies = list(proxies)
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._clock = clock
        self._wall_clock = wall_clock
        #: (Authorization header, peer) -> (principal, valid until, directory revision)
        self._cache: OrderedDict[
            tuple[str | None, PeerIdentity | None], tuple[Principal, float, int]
        ] = OrderedDict()

    @property
    def challenge(self) -> dict[str, str]:
        """The ``WWW-Authenticate`` header of a 401 for a request that sent nothing."""
        if self.mode == "mtls":
            return {"WWW-Authenticate": f"ClientCertificate {_REALM}"}
        return {"WWW-Authenticate": f"Bearer {_REALM}"}

    async def authenticate(self, scope: Mapping[str, Any]) -> Principal:
        """The principal of the request ``scope``; 401 or 403 when there is none."""
        if self.mode == "open":
            return OPEN
        peer = self.peer(scope)
        authorization = _header(scope, _AUTHORIZATION)
        key = (authorization, peer)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None:
            principal, until, revision = cached
            if until > now and revision == self._directory.revision:
                return principal
            del self._cache[key]
        revision = self._directory.revision
        principal = await self._authenticate(peer, authorization)
        if self._cache_size > 0 and self._cache_ttl > 0:
            self._cache[key] = (principal, now + self._lifetime(principal), revision)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def _lifetime(self, principal: Principal) -> float:
        """How long an authentication may be reused: never past the token's expiry."""
        expiry = principal.claims.get("exp")
        if isinstance(expiry, int | float):
            return max(0.0, min(self._cache_ttl, expiry - self._wall_clock()))
        return self._cache_ttl

    async def _authenticate(
        self, peer: PeerIdentity | None, authorization: str | None
    ) -> Principal:
        if self.mode == "mtls" or (self.mode == "any" and authorization is None):
            if peer is None:
                raise UnauthenticatedError(
                    "a client certificate is required", headers=self.challenge
                )
            principal = await self._from_peer(peer)
        else:
            assert self._tokens is not None
            claimed = await self._tokens.principal(authorization)
            methods: frozenset[AuthMethod] = frozenset({"token"})
            if self.mode == "both":
                if peer is None:
                    raise UnauthenticatedError(
                        "a client certificate is required as well as a token",
                        headers={"WWW-Authenticate": f"ClientCertificate {_REALM}"},
                    )
                methods = frozenset({"token", "mtls"})
            principal = await self._from_token(claimed, methods)
        await self._check_tenant(principal)
        return principal

    def peer(self, scope: Mapping[str, Any]) -> PeerIdentity | None:
        """The verified client certificate: from this connection, or from a trusted proxy."""
        peer = scope.get(PEER_SCOPE_KEY)
        if isinstance(peer, PeerIdentity):
            return peer
        # the request-context middleware marks requests whose direct peer is a trusted proxy
        via = scope.get(VIA_PROXY_SCOPE_KEY)
        if self._proxies and isinstance(via, str) and trusted_proxy(via, self._proxies):
            forwarded = _header(scope, _XFCC)
            if forwarded:
                return peer_from_forwarded_header(forwarded)
        return None

    async def _from_peer(self, peer: PeerIdentity) -> Principal:
        names = [*peer.uri_sans, *peer.dns_sans, *peer.email_sans]
        if peer.subject:
            names.append(peer.subject)
        if not names:
            raise UnauthenticatedError(
                "the client certificate names nobody", headers=self.challenge
            )
        identity = await self._directory.identity(names)
        tenant = identity.user.tenant_id if identity.user is not None else None
        subject = identity.user.subject if identity.user is not None else names[0]
        return Principal(
            subject=subject,
            tenant=tenant,
            roles=roles_for(identity, tenant),
            auth=frozenset({"mtls"}),
            claims={"fingerprintSha256": peer.fingerprint_sha256, "names": names},
        )

    async def _from_token(self, claimed: Principal, methods: frozenset[AuthMethod]) -> Principal:
        identity: Identity = await self._directory.identity([claimed.subject])
        tenant = claimed.tenant
        if identity.user is not None:
            if tenant is None:
                tenant = identity.user.tenant_id
            elif tenant != identity.user.tenant_id:
                raise ForbiddenError("the token's tenant is not the tenant of its subject")
        return Principal(
            subject=claimed.subject,
            tenant=tenant,
            roles=claimed.roles | roles_for(identity, tenant),
            auth=methods,
            claims=claimed.claims,
        )

    async def _check_tenant(self, principal: Principal) -> None:
        if principal.tenant is None:
            return
        tenant = await self._directory.tenant(principal.tenant)
        if tenant is None:
            raise ForbiddenError(f"tenant {principal.tenant} is not registered")
        if tenant.status == "suspended":
            raise ForbiddenError(f"tenant {principal.tenant} is suspended")
