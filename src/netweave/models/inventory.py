"""Wire models of the O2-IMS infrastructure inventory (inventory API v1).

The field set is the one of O2ims spec 7.0 (R7), plus the spec 11.0 (R11) fields that
do not conflict with it:

* ``OCloudInfo`` carries the SMO-assigned id under both spellings, ``globalCloudId``
  (R11) and ``globalcloudId`` (R7), as the O-RAN SC reference implementation does.
* ``ResourcePool`` carries R7's ``oCloudId``/``globalLocationId``/``location`` and
  R11's ``oCloudSiteId``.
* ``ResourceType`` carries R11's ``alarmDictionaryId``.

Every inventory model knows its :class:`ObjectKind` (the ``objectType`` name used by
subscription filters) and the wire name of its identifier.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field

from netweave.models.common import WireModel

JsonObject = dict[str, Any]


class ObjectKind(StrEnum):
    """The inventory object kinds, named as subscription filters name them (``objectType``)."""

    CLOUD = "CloudInfo"
    RESOURCE_TYPE = "ResourceTypeInfo"
    RESOURCE_POOL = "ResourcePoolInfo"
    RESOURCE = "ResourceInfo"
    DEPLOYMENT_MANAGER = "DeploymentManagerInfo"
    LOCATION = "LocationInfo"
    OCLOUD_SITE = "OCloudSiteInfo"


class InventoryModel(WireModel):
    """An object of the inventory; subclasses set ``kind`` and ``id_attribute``."""

    kind: ClassVar[ObjectKind]
    id_attribute: ClassVar[str]
    #: wire name of the attribute naming the parent object, for nested collections
    parent_attribute: ClassVar[str | None] = None

    @property
    def object_id(self) -> str:
        return str(getattr(self, _snake(self.id_attribute)))

    @property
    def parent_id(self) -> str | None:
        if self.parent_attribute is None:
            return None
        return str(getattr(self, _snake(self.parent_attribute)))

    def to_wire(self) -> JsonObject:
        """The JSON-ready wire form (camelCase, absent optionals omitted)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


class OCloudInfo(WireModel):
    kind: ClassVar[ObjectKind] = ObjectKind.CLOUD

    o_cloud_id: str = Field(alias="oCloudId", description="Identifier of the O-Cloud instance.")
    global_cloud_id: str = Field(
        alias="globalCloudId", description="SMO-assigned global identifier (spec 11 spelling)."
    )
    globalcloud_id: str = Field(
        alias="globalcloudId", description="The same identifier in the spec 7 spelling."
    )
    name: str
    description: str
    service_uri: str = Field(description="The O2-IMS apiRoot of this O-Cloud.")
    extensions: dict[str, Any] = Field(default_factory=dict)


class ResourceType(InventoryModel):
    kind = ObjectKind.RESOURCE_TYPE
    id_attribute = "resourceTypeId"

    resource_type_id: str
    name: str
    description: str
    vendor: str
    model: str
    version: str
    resource_kind: Literal["UNDEFINED", "PHYSICAL", "LOGICAL"]
    resource_class: Literal["UNDEFINED", "COMPUTE", "NETWORKING", "STORAGE"]
    alarm_dictionary_id: str | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)


class ResourcePool(InventoryModel):
    kind = ObjectKind.RESOURCE_POOL
    id_attribute = "resourcePoolId"

    resource_pool_id: str
    name: str
    description: str
    o_cloud_id: str = Field(alias="oCloudId")
    global_location_id: str
    location: str | None = None
    o_cloud_site_id: str | None = Field(default=None, alias="oCloudSiteId")
    extensions: dict[str, Any] = Field(default_factory=dict)


class Resource(InventoryModel):
    kind = ObjectKind.RESOURCE
    id_attribute = "resourceId"
    parent_attribute = "resourcePoolId"

    resource_id: str
    resource_pool_id: str
    resource_type_id: str
    global_asset_id: str
    description: str
    elements: list[Resource] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    extensions: dict[str, Any] = Field(default_factory=dict)


class DeploymentManager(InventoryModel):
    kind = ObjectKind.DEPLOYMENT_MANAGER
    id_attribute = "deploymentManagerId"

    deployment_manager_id: str
    name: str
    description: str
    o_cloud_id: str = Field(alias="oCloudId")
    service_uri: str
    supported_locations: list[str] = Field(default_factory=list)
    capabilities: dict[str, str] = Field(default_factory=dict)
    capacity: dict[str, str] = Field(default_factory=dict)
    extensions: dict[str, Any] = Field(default_factory=dict)


class GeoJsonPoint(WireModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float] = Field(min_length=2, max_length=3)


class CivicAddressElement(WireModel):
    ca_type: int
    ca_value: str


class LocationInfo(InventoryModel):
    kind = ObjectKind.LOCATION
    id_attribute = "globalLocationId"

    global_location_id: str
    name: str
    description: str
    o_cloud_site_ids: list[str] = Field(default_factory=list, alias="oCloudSiteIds")
    coordinate: GeoJsonPoint | None = None
    civic_address: list[CivicAddressElement] | None = None
    address: str | None = None
    extensions: dict[str, Any] = Field(default_factory=dict)


class OCloudSiteInfo(InventoryModel):
    kind = ObjectKind.OCLOUD_SITE
    id_attribute = "oCloudSiteId"

    o_cloud_site_id: str = Field(alias="oCloudSiteId")
    global_location_id: str
    name: str
    description: str
    resource_pools: list[str] = Field(default_factory=list)
    extensions: dict[str, Any] = Field(default_factory=dict)


#: the model class of each kind served from the inventory view
MODEL_OF_KIND: dict[ObjectKind, type[InventoryModel]] = {
    ObjectKind.RESOURCE_TYPE: ResourceType,
    ObjectKind.RESOURCE_POOL: ResourcePool,
    ObjectKind.RESOURCE: Resource,
    ObjectKind.DEPLOYMENT_MANAGER: DeploymentManager,
    ObjectKind.LOCATION: LocationInfo,
    ObjectKind.OCLOUD_SITE: OCloudSiteInfo,
}
