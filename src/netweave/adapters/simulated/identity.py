"""The stable identifiers of the simulated O-Cloud's objects.

Every id is :func:`netweave.models.ids.stable_id` of a natural key (a pool name, a
hardware model key, a node key) under the O-Cloud id, so the same O-Cloud id yields the
same ids in every process and after every restart.
"""

from __future__ import annotations

from netweave.models.ids import stable_id

__all__ = [
    "deployment_manager_id",
    "element_id",
    "node_id",
    "pool_id",
    "resource_type_id",
    "site_id",
]


def site_id(ocloud_id: str, global_location_id: str) -> str:
    """The O-Cloud site at a location (one site per location)."""
    return stable_id(ocloud_id, "ocloud-site", global_location_id)


def pool_id(ocloud_id: str, pool_name: str) -> str:
    """A resource pool, keyed by its name."""
    return stable_id(ocloud_id, "resource-pool", pool_name)


def resource_type_id(ocloud_id: str, type_key: str) -> str:
    """A resource type, keyed by its catalog key (hardware, part or storage class)."""
    return stable_id(ocloud_id, "resource-type", type_key)


def node_id(ocloud_id: str, node_key: str) -> str:
    """A node: the hostname for initial nodes, ``node-added-<n>`` for nodes churn adds."""
    return stable_id(ocloud_id, "node", node_key)


def element_id(ocloud_id: str, node_key: str, element: str) -> str:
    """A part of a node (``nic0``, ``gpu1``, ``fec0``)."""
    return stable_id(ocloud_id, "node-element", f"{node_key}/{element}")


def deployment_manager_id(ocloud_id: str, cluster_name: str) -> str:
    """The Kubernetes cluster, keyed by its name."""
    return stable_id(ocloud_id, "deployment-manager", cluster_name)
