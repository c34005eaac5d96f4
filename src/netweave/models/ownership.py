"""Who owns a resource pool: the tenant fields of a pool's ``extensions``.

A backend marks a pool's owner where its objects carry one (the Kubernetes backend reads
a label or annotation, configurable; the simulated backend a setting) and writes it into
the pool's ``extensions`` as ``tenant`` (the owning tenant's id) or ``shared: true``
(an untenanted pool the operator shares with every tenant).  Resources belong to the
tenant of their pool.  :mod:`netweave.security.visibility` decides from these fields
what a tenant may see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["SHARED", "SHARED_KEY", "TENANT_KEY", "Ownership", "ownership_fields", "ownership_of"]

#: ``extensions`` key naming the owning tenant
TENANT_KEY: Final = "tenant"
#: ``extensions`` key that is ``true`` on a shared, untenanted pool
SHARED_KEY: Final = "shared"
#: the owner value that marks a pool shared (so it can never be a tenant id)
SHARED: Final = "shared"

#: (owning tenant or None, shared)
Ownership = tuple[str | None, bool]


def ownership_of(extensions: Mapping[str, Any]) -> Ownership:
    """The owner recorded in a pool's ``extensions``."""
    tenant = extensions.get(TENANT_KEY)
    if isinstance(tenant, str) and tenant:
        return tenant, False
    return None, extensions.get(SHARED_KEY) is True


def ownership_fields(owner: str | None, *, shared: bool = False) -> dict[str, Any]:
    """The ``extensions`` entries recording ``owner`` (a tenant id, or ``shared``)."""
    if owner == SHARED or (owner is None and shared):
        return {SHARED_KEY: True}
    if owner:
        return {TENANT_KEY: owner}
    return {}
