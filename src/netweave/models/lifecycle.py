"""Wire models of the gateway API's writes: pool bodies, resource requests, operations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from netweave.adapters.lifecycle import LABEL_KEY, POOL_NAME, Taint
from netweave.models.common import WireModel

__all__ = [
    "MAX_REPLICAS",
    "Operation",
    "OperationStep",
    "PoolExtensions",
    "PoolExtensionsPatch",
    "ResourceCreate",
    "ResourcePoolCreate",
    "ResourcePoolPatch",
    "TaintSpec",
]

MAX_REPLICAS = 1000
_LABEL_VALUE_MAX = 63


class TaintSpec(WireModel):
    key: str = Field(min_length=1, max_length=317)
    value: str = Field(default="", max_length=_LABEL_VALUE_MAX)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not LABEL_KEY.fullmatch(value):
            raise ValueError("not a valid taint key")
        return value

    def to_taint(self) -> Taint:
        return Taint(key=self.key, value=self.value, effect=self.effect)


def _check_labels(labels: dict[str, str] | None) -> dict[str, str] | None:
    for key, value in (labels or {}).items():
        if not LABEL_KEY.fullmatch(key) or len(key) > 317:
            raise ValueError(f"{key!r} is not a valid label key")
        if len(value) > _LABEL_VALUE_MAX:
            raise ValueError(f"the value of label {key} is longer than {_LABEL_VALUE_MAX}")
    return labels


class PoolExtensions(WireModel):
    """The backend-facing part of a pool to create."""

    instance_type: str | None = Field(default=None, min_length=1, max_length=253)
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSpec] = Field(default_factory=list, max_length=64)
    #: the owning tenant; only platform principals may choose it (a tenant's pools are its own)
    tenant: str | None = Field(default=None, min_length=1, max_length=63)

    _labels = field_validator("labels")(_check_labels)


class ResourcePoolCreate(WireModel):
    """``POST /o2ims/v1/resourcePools`` (and the whole body of ``PUT``)."""

    name: str = Field(min_length=1, max_length=63)
    description: str = Field(default="", max_length=1024)
    location: str | None = Field(default=None, max_length=256)
    o_cloud_id: str | None = Field(default=None, alias="oCloudId")
    global_location_id: str | None = Field(default=None, max_length=256)
    extensions: PoolExtensions = Field(default_factory=PoolExtensions)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not POOL_NAME.fullmatch(value):
            raise ValueError(
                "must be a lower-case DNS label: letters, digits and '-', at most 63 characters"
            )
        return value


class PoolExtensionsPatch(WireModel):
    labels: dict[str, str] | None = None
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)

    _labels = field_validator("labels")(_check_labels)


class ResourcePoolPatch(WireModel):
    """``PATCH /o2ims/v1/resourcePools/{id}``: a partial update; absent or null members stay."""

    description: str | None = Field(default=None, max_length=1024)
    extensions: PoolExtensionsPatch | None = None


class ResourceCreate(WireModel):
    """``POST /o2ims/v1/resources``: add one resource (node) to a pool."""

    resource_pool_id: str = Field(min_length=1, max_length=128)


class OperationStep(WireModel):
    time: str
    message: str


class Operation(WireModel):
    """A long-running write, as ``GET /o2ims/v1/operations/{operationId}`` shows it."""

    operation_id: str
    type: Literal["addResource", "removeResource"]
    status: Literal["running", "succeeded", "failed"]
    resource_pool_id: str | None = None
    resource_id: str | None = None
    steps: list[OperationStep] = Field(default_factory=list)
    error: str | None = None
    created_at: str
    updated_at: str
    #: the tenant of the principal that started it (None: a platform principal)
    tenant_id: str | None = None
