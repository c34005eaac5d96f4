"""Who is making a request: the :class:`Principal`.

Modelled on starlette's ``(AuthCredentials(scopes), user)`` pair, folded into one
immutable value: the authenticators (mTLS, bearer token) produce a principal, the
permission checks in :mod:`netweave.security.rbac` consume it.  A request that carries
no credentials is :data:`ANONYMOUS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["ANONYMOUS", "OPEN", "SCOPE_KEY", "AuthMethod", "Principal", "principal_of", "tenant_of"]

#: how a principal proved who it is
AuthMethod = Literal["mtls", "token", "open"]


def _no_claims() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Principal:
    """An authenticated (or anonymous) caller.

    ``roles`` are netweave role names (see :mod:`netweave.security.rbac`), already mapped
    from whatever the credential carried.  ``tenant`` is the tenant the principal belongs
    to; ``None`` for platform-level principals.  ``auth`` records which mechanisms
    vouched for it, empty for :data:`ANONYMOUS`.  ``claims`` keeps the raw token claims
    (or certificate fields) for auditing; it takes no part in equality, hashing or
    ``repr`` so that it never ends up in a log line by accident.
    """

    subject: str
    tenant: str | None
    roles: frozenset[str]
    auth: frozenset[AuthMethod]
    claims: Mapping[str, Any] = field(
        default_factory=_no_claims, compare=False, hash=False, repr=False
    )

    @property
    def is_authenticated(self) -> bool:
        """True when at least one mechanism vouched for this principal."""
        return bool(self.auth)


#: the principal of a request that presented no credentials
ANONYMOUS = Principal(subject="anonymous", tenant=None, roles=frozenset(), auth=frozenset())

#: the principal of every request to a gateway running open (no authentication
#: configured, loopback or ``NETWEAVE_INSECURE=true``): a platform administrator
OPEN = Principal(
    subject="anonymous", tenant=None, roles=frozenset({"platform-admin"}), auth=frozenset({"open"})
)

#: where the authentication middleware puts the request's principal in the ASGI scope
SCOPE_KEY = "netweave.principal"


def principal_of(scope: Mapping[str, Any]) -> Principal:
    """The principal of a request; :data:`OPEN` for an app built without authentication."""
    principal = scope.get(SCOPE_KEY)
    return principal if isinstance(principal, Principal) else OPEN


def tenant_of(scope: Mapping[str, Any]) -> str | None:
    """The tenant a request is confined to; None for platform principals."""
    return principal_of(scope).tenant
