"""Identifier types and the stable UUIDv5 scheme.

Every O2-IMS identifier netweave hands out is a UUIDv5 derived from a backend identity
(a Kubernetes uid, a simulated node name, ...) under the O-Cloud's own namespace, so it
is identical on every replica and survives restarts.
"""

from __future__ import annotations

import uuid
from typing import NewType

OCloudId = NewType("OCloudId", str)
ResourcePoolId = NewType("ResourcePoolId", str)
ResourceId = NewType("ResourceId", str)
ResourceTypeId = NewType("ResourceTypeId", str)
DeploymentManagerId = NewType("DeploymentManagerId", str)
SubscriptionId = NewType("SubscriptionId", str)

#: Root namespace of all netweave identifiers (UUIDv5 of the project URN).
NETWEAVE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:netweave")


def default_ocloud_id(name: str) -> str:
    """The O-Cloud id used when none is configured: stable for a given O-Cloud name."""
    return str(uuid.uuid5(NETWEAVE_NAMESPACE, f"ocloud:{name}"))


def stable_id(ocloud_id: str, kind: str, key: str) -> str:
    """UUIDv5 of ``kind:key`` under the O-Cloud's namespace.

    ``kind`` separates identities of different object kinds that might share a key
    (a node and a pool with the same name, say).
    """
    return str(uuid.uuid5(uuid.UUID(ocloud_id), f"{kind}:{key}"))


def canonical_uuid(value: str | None, *, name: str) -> str | None:
    """``value`` in canonical UUID form; ValueError naming ``name`` if it is no UUID."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise ValueError(f"{name} must be a UUID") from exc


def alarm_dictionary_id(ocloud_id: str, resource_type_id: str) -> str:
    """The id of the alarm dictionary of a resource type (``ResourceType.alarmDictionaryId``)."""
    return stable_id(ocloud_id, "alarm-dictionary", resource_type_id)
