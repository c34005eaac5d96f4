"""Resource pools created through the gateway: their shape and their O2-IMS objects.

A pool created by a write is a :class:`~netweave.adapters.simulated.catalog.PoolSpec`
like the built-in ones, so its nodes are built, addressed and counted the same way: a
``worker`` pool of one hardware model at one site, in the site's first zone, on the
lowest node network (third octet) no other pool of the site uses.  These functions are
pure; :mod:`netweave.adapters.simulated.writes` decides when to call them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netweave.adapters.lifecycle import PoolRequest, Taint
from netweave.adapters.simulated.catalog import (
    DEFAULT_HARDWARE,
    HARDWARE_BY_KEY,
    SITES,
    HardwareSpec,
    PoolSpec,
    SiteSpec,
)
from netweave.adapters.simulated.identity import pool_id, resource_type_id, site_id
from netweave.errors import ConflictError, InvalidRequestError
from netweave.models.inventory import OCloudSiteInfo, ResourcePool
from netweave.models.ownership import ownership_fields

__all__ = [
    "CREATED_ROLE",
    "choose_hardware",
    "choose_site",
    "created_pool",
    "free_subnet",
    "pool_taints",
    "site_with_pools",
    "spec_for_request",
]

#: the node role of a pool created through the gateway
CREATED_ROLE = "worker"
#: node networks (third octets) a new pool may take, round numbers first like the catalog's
_SUBNETS: tuple[int, ...] = (*range(10, 256, 10), *(n for n in range(1, 256) if n % 10))


def choose_site(global_location_id: str | None) -> tuple[SiteSpec, bool]:
    """The site at ``global_location_id``, else the first site; and whether it was the one asked."""
    for site in SITES:
        if site.global_location_id == global_location_id:
            return site, True
    return SITES[0], False


def choose_hardware(instance_type: str | None) -> HardwareSpec:
    """The hardware profile named ``instance_type`` (None: the default profile)."""
    key = DEFAULT_HARDWARE if instance_type is None else instance_type
    hardware = HARDWARE_BY_KEY.get(key)
    if hardware is None:
        valid = ", ".join(sorted(HARDWARE_BY_KEY))
        raise InvalidRequestError(
            f"unknown instance type {instance_type!r}; the simulated O-Cloud has: {valid}"
        )
    return hardware


def free_subnet(site: SiteSpec, pools: Iterable[PoolSpec]) -> int:
    """The lowest node network of ``site`` that no pool in ``pools`` uses."""
    used = {pool.subnet for pool in pools if pool.site == site.code}
    for subnet in _SUBNETS:
        if subnet not in used:
            return subnet
    raise ConflictError(f"site {site.name} has no free node network for another pool")


def spec_for_request(
    request: PoolRequest, *, site: SiteSpec, hardware: HardwareSpec, subnet: int
) -> PoolSpec:
    """The node shape of the pool ``request`` asks for.

    Churn leaves it alone (not elastic) and it has no disruption budget to keep
    (``min_nodes`` 0): its size is whatever the operator asks.
    """
    return PoolSpec(
        name=request.name,
        site=site.code,
        zone=f"{site.global_location_id.lower()}a",
        role=CREATED_ROLE,
        hardware=hardware.key,
        nodes=0,
        description=request.description,
        subnet=subnet,
        tags=(CREATED_ROLE,),
        min_nodes=0,
        elastic=False,
        labels=dict(request.labels),
        taints=tuple(request.taints),
    )


def pool_taints(taints: Sequence[Taint]) -> list[dict[str, str]]:
    """``taints`` as the pool's extensions list them (the gateway's ``TaintSpec`` shape)."""
    return [{"key": t.key, "value": t.value, "effect": t.effect} for t in taints]


def created_pool(
    ocloud_id: str,
    request: PoolRequest,
    spec: PoolSpec,
    *,
    site: SiteSpec,
    placed: bool,
    replicas: int,
) -> ResourcePool:
    """The O2-IMS pool created for ``request`` (with ``spec``) to hold ``replicas`` nodes.

    ``placed`` says whether the site is the requested location; the extensions say which
    site it is and why (``placement``: ``requested`` or ``default``).
    """
    placement: dict[str, Any] = {"placement": "requested" if placed else "default"}
    if not placed and request.global_location_id is not None:
        placement["requestedGlobalLocationId"] = request.global_location_id
    return ResourcePool(
        resource_pool_id=pool_id(ocloud_id, spec.name),
        name=spec.name,
        description=request.description,
        o_cloud_id=ocloud_id,
        global_location_id=site.global_location_id,
        location=request.location or f"{site.name}, {site.city}, {site.country}",
        o_cloud_site_id=site_id(ocloud_id, site.global_location_id),
        extensions={
            "zone": spec.zone,
            "region": site.region,
            "country": site.country_code,
            "city": site.city,
            "role": spec.role,
            "resourceTypeId": resource_type_id(ocloud_id, spec.hardware),
            "nodeSelector": {"o2ims.oran.org/resource-pool": spec.name},
            "instanceType": spec.hardware,
            "replicas": replicas,
            "labels": dict(spec.labels),
            "taints": pool_taints(spec.taints),
            **placement,
            **ownership_fields(request.tenant),
        },
    )


def site_with_pools(site: OCloudSiteInfo, pools: Mapping[str, PoolSpec]) -> OCloudSiteInfo:
    """``site`` listing the pools of ``pools`` (by id, in order) that are at it, and their zones."""
    code = site.extensions.get("siteCode")
    here = [(pid, spec) for pid, spec in pools.items() if spec.site == code]
    zones = list(dict.fromkeys(spec.zone for _, spec in here))
    extensions = {**site.extensions, "zones": zones}
    return site.model_copy(
        update={"resource_pools": [pid for pid, _ in here], "extensions": extensions}
    )
