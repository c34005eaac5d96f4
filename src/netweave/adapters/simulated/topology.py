"""Deterministic construction of the simulated O-Cloud from ``(ocloud_id, seed)``.

:func:`build_topology` is pure: it reads the tables of
:mod:`netweave.adapters.simulated.catalog`, derives every id with
:func:`netweave.models.ids.stable_id`, and takes serial numbers and MAC addresses from
generators seeded with ``seed``.  The same inputs give equal objects in every process.

The O-Cloud it builds has three locations (Madrid, Dallas, Tokyo), one O-Cloud site per
location, seven resource pools, 29 nodes, 14 resource types (seven server models, four
node parts, three storage classes) and one deployment manager, the Kubernetes cluster.
Every node is Ready; ``dal-storage-03`` reports DiskPressure (see
:data:`~netweave.adapters.simulated.alarms.INITIAL_CONDITIONS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netweave.adapters.simulated.alarms import INITIAL_CONDITIONS
from netweave.adapters.simulated.catalog import (
    CLUSTER,
    ELEMENTS,
    HARDWARE,
    POOLS,
    SITE_BY_CODE,
    SITES,
    STORAGE_CLASSES,
    PoolSpec,
    SiteSpec,
)
from netweave.adapters.simulated.identity import (
    deployment_manager_id,
    pool_id,
    resource_type_id,
    site_id,
)
from netweave.adapters.simulated.nodes import (
    build_node,
    cluster_capacity,
    hostname,
    with_condition,
)
from netweave.models.ids import alarm_dictionary_id
from netweave.models.inventory import (
    CivicAddressElement,
    DeploymentManager,
    GeoJsonPoint,
    InventoryModel,
    LocationInfo,
    ObjectKind,
    OCloudSiteInfo,
    Resource,
    ResourcePool,
    ResourceType,
)
from netweave.models.ownership import ownership_fields

__all__ = [
    "NodePlacement",
    "Topology",
    "build_deployment_manager",
    "build_topology",
    "initial_placements",
    "storage_type_key",
]


@dataclass(frozen=True, slots=True)
class NodePlacement:
    """Where a node sits (pool and 1-based slot) and the key its id derives from."""

    pool: PoolSpec
    slot: int
    key: str


@dataclass(frozen=True, slots=True)
class Topology:
    """The whole simulated O-Cloud at start."""

    ocloud_id: str
    seed: int
    locations: tuple[LocationInfo, ...]
    sites: tuple[OCloudSiteInfo, ...]
    pools: tuple[ResourcePool, ...]
    resource_types: tuple[ResourceType, ...]
    nodes: tuple[Resource, ...]
    deployment_manager: DeploymentManager

    def objects(self) -> dict[ObjectKind, tuple[InventoryModel, ...]]:
        """Every object, by kind (the kinds of ``MODEL_OF_KIND``)."""
        return {
            ObjectKind.LOCATION: self.locations,
            ObjectKind.OCLOUD_SITE: self.sites,
            ObjectKind.RESOURCE_POOL: self.pools,
            ObjectKind.RESOURCE_TYPE: self.resource_types,
            ObjectKind.RESOURCE: self.nodes,
            ObjectKind.DEPLOYMENT_MANAGER: (self.deployment_manager,),
        }


def build_topology(
    ocloud_id: str, seed: int = 0, pool_owners: Mapping[str, str] | None = None
) -> Topology:
    """The simulated O-Cloud ``ocloud_id`` (a UUID string) as it is at start.

    ``pool_owners`` maps pool names to the tenant owning them, or to ``shared``; the
    simulated equivalent of the tenant label on a backend object.
    """
    owners = dict(pool_owners or {})
    nodes = tuple(
        _with_initial_conditions(
            build_node(ocloud_id, seed=seed, pool=p.pool, slot=p.slot, key=p.key), p.key
        )
        for p in initial_placements()
    )
    return Topology(
        ocloud_id=ocloud_id,
        seed=seed,
        locations=tuple(_location(ocloud_id, site) for site in SITES),
        sites=tuple(_site(ocloud_id, site) for site in SITES),
        pools=tuple(_pool(ocloud_id, pool, owners.get(pool.name)) for pool in POOLS),
        resource_types=_resource_types(ocloud_id),
        nodes=nodes,
        deployment_manager=build_deployment_manager(ocloud_id, nodes),
    )


def initial_placements() -> list[NodePlacement]:
    """The nodes at start: slots 1..n of every pool, keyed by hostname."""
    return [
        NodePlacement(pool=pool, slot=slot, key=hostname(pool, slot))
        for pool in POOLS
        for slot in range(1, pool.nodes + 1)
    ]


def build_deployment_manager(ocloud_id: str, nodes: Iterable[Resource]) -> DeploymentManager:
    """The Kubernetes cluster managing ``nodes``, with their summed capacity."""
    control_plane = next(pool for pool in POOLS if pool.role == "control-plane")
    return DeploymentManager(
        deployment_manager_id=deployment_manager_id(ocloud_id, CLUSTER.name),
        name=CLUSTER.name,
        description=CLUSTER.description,
        o_cloud_id=ocloud_id,
        service_uri=CLUSTER.service_uri,
        supported_locations=[site.global_location_id for site in SITES],
        capabilities=dict(CLUSTER.capabilities),
        capacity=cluster_capacity(nodes),
        extensions={
            "clusterName": CLUSTER.name,
            "distribution": "kubeadm",
            "kubernetesVersion": CLUSTER.kubernetes_version,
            "containerRuntime": CLUSTER.container_runtime,
            "controlPlanePool": control_plane.name,
            "controlPlaneLocation": SITE_BY_CODE[control_plane.site].global_location_id,
        },
    )


def _with_initial_conditions(node: Resource, key: str) -> Resource:
    """``node`` with the conditions it starts with (an alarm to show from the start)."""
    for node_key, condition in INITIAL_CONDITIONS:
        if node_key == key:
            node = with_condition(node, condition, True)
    return node


def storage_type_key(storage_class: str) -> str:
    """The resource type key of a storage class."""
    return f"storage-class/{storage_class}"


def _location(ocloud_id: str, site: SiteSpec) -> LocationInfo:
    return LocationInfo(
        global_location_id=site.global_location_id,
        name=f"{site.city}, {site.country}",
        description=site.description,
        o_cloud_site_ids=[site_id(ocloud_id, site.global_location_id)],
        coordinate=GeoJsonPoint(coordinates=[site.longitude, site.latitude]),
        civic_address=[CivicAddressElement(ca_type=t, ca_value=v) for t, v in site.civic],
        address=site.address,
        extensions={"city": site.city, "country": site.country_code, "timezone": site.timezone},
    )


def _site(ocloud_id: str, site: SiteSpec) -> OCloudSiteInfo:
    pools = [pool for pool in POOLS if pool.site == site.code]
    return OCloudSiteInfo(
        o_cloud_site_id=site_id(ocloud_id, site.global_location_id),
        global_location_id=site.global_location_id,
        name=site.name,
        description=site.description,
        resource_pools=[pool_id(ocloud_id, pool.name) for pool in pools],
        extensions={
            "siteCode": site.code,
            "region": site.region,
            "zones": [pool.zone for pool in pools],
        },
    )


def _pool(ocloud_id: str, pool: PoolSpec, owner: str | None = None) -> ResourcePool:
    site = SITE_BY_CODE[pool.site]
    ownership = ownership_fields(owner)
    return ResourcePool(
        resource_pool_id=pool_id(ocloud_id, pool.name),
        name=pool.name,
        description=pool.description,
        o_cloud_id=ocloud_id,
        global_location_id=site.global_location_id,
        location=f"{site.name}, {site.city}, {site.country}",
        o_cloud_site_id=site_id(ocloud_id, site.global_location_id),
        extensions={
            "zone": pool.zone,
            "region": site.region,
            "country": site.country_code,
            "city": site.city,
            "role": pool.role,
            "resourceTypeId": resource_type_id(ocloud_id, pool.hardware),
            "nodeSelector": {"o2ims.oran.org/resource-pool": pool.name},
            **ownership,
        },
    )


def _resource_types(ocloud_id: str) -> tuple[ResourceType, ...]:
    servers = [
        ResourceType(
            resource_type_id=resource_type_id(ocloud_id, hw.key),
            alarm_dictionary_id=alarm_dictionary_id(ocloud_id, resource_type_id(ocloud_id, hw.key)),
            name=hw.key,
            description=hw.description,
            vendor=hw.vendor,
            model=hw.model,
            version=hw.version,
            resource_kind="PHYSICAL",
            resource_class="COMPUTE",
            extensions={
                "formFactor": hw.form_factor,
                "cpuModel": hw.cpu_model,
                "cpuSockets": hw.sockets,
                "cpuCores": hw.cores,
                "memoryGiB": hw.memory_gib,
                "disks": hw.disks,
                "bmcType": hw.bmc_type,
                "instanceType": hw.key,
            },
        )
        for hw in HARDWARE
    ]
    parts = [
        ResourceType(
            resource_type_id=resource_type_id(ocloud_id, part.key),
            alarm_dictionary_id=alarm_dictionary_id(
                ocloud_id, resource_type_id(ocloud_id, part.key)
            ),
            name=part.key,
            description=part.description,
            vendor=part.vendor,
            model=part.model,
            version=part.version,
            resource_kind="PHYSICAL",
            resource_class=part.resource_class,
            extensions={"role": part.role, **part.details},
        )
        for part in ELEMENTS
    ]
    storage = [
        ResourceType(
            resource_type_id=resource_type_id(ocloud_id, storage_type_key(sc.name)),
            alarm_dictionary_id=alarm_dictionary_id(
                ocloud_id, resource_type_id(ocloud_id, storage_type_key(sc.name))
            ),
            name=sc.name,
            description=sc.description,
            vendor=sc.vendor,
            model=sc.model,
            version=sc.version,
            resource_kind="LOGICAL",
            resource_class="STORAGE",
            extensions={
                "storageClassName": sc.name,
                "provisioner": sc.provisioner,
                "reclaimPolicy": sc.reclaim_policy,
                "volumeBindingMode": sc.volume_binding_mode,
                "accessModes": list(sc.access_modes),
                "allowVolumeExpansion": sc.provisioner != "kubernetes.io/no-provisioner",
                "isDefault": sc.is_default,
            },
        )
        for sc in STORAGE_CLASSES
    ]
    return (*servers, *parts, *storage)
