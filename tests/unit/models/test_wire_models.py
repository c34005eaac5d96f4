from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from netweave.models.ids import NETWEAVE_NAMESPACE, default_ocloud_id, stable_id
from netweave.models.inventory import (
    MODEL_OF_KIND,
    DeploymentManager,
    ObjectKind,
    OCloudInfo,
    Resource,
    ResourcePool,
    ResourceType,
)

OCLOUD = default_ocloud_id("unit")


def test_ids_are_uuid5_under_the_ocloud_namespace() -> None:
    assert default_ocloud_id("unit") == str(uuid.uuid5(NETWEAVE_NAMESPACE, "ocloud:unit"))
    node = stable_id(OCLOUD, "node", "uid-1")
    assert node == str(uuid.uuid5(uuid.UUID(OCLOUD), "node:uid-1"))
    assert uuid.UUID(node).version == 5
    assert stable_id(OCLOUD, "pool", "uid-1") != node  # kinds never collide


def test_wire_names_are_the_spec_spellings() -> None:
    cloud = OCloudInfo(
        o_cloud_id=OCLOUD,
        global_cloud_id=OCLOUD,
        globalcloud_id=OCLOUD,
        name="c",
        description="d",
        service_uri="http://x",
    )
    assert set(cloud.model_dump(by_alias=True)) == {
        "oCloudId",
        "globalCloudId",
        "globalcloudId",
        "name",
        "description",
        "serviceUri",
        "extensions",
    }
    pool = ResourcePool(
        resource_pool_id=stable_id(OCLOUD, "pool", "p"),
        name="p",
        description="d",
        o_cloud_id=OCLOUD,
        global_location_id="ES-MAD-1",
        o_cloud_site_id=stable_id(OCLOUD, "site", "s"),
    )
    wire = pool.to_wire()
    assert set(wire) == {
        "resourcePoolId",
        "name",
        "description",
        "oCloudId",
        "globalLocationId",
        "oCloudSiteId",
        "extensions",
    }
    assert "location" not in wire  # absent optionals are left out, never null
    assert pool.object_id == wire["resourcePoolId"]
    assert pool.parent_id is None


def test_resources_know_their_pool_and_nest_elements() -> None:
    nic = Resource(
        resource_id=stable_id(OCLOUD, "nic", "n"),
        resource_pool_id="p",
        resource_type_id="t",
        global_asset_id="SN1",
        description="nic",
    )
    node = Resource(
        resource_id=stable_id(OCLOUD, "node", "n"),
        resource_pool_id="p",
        resource_type_id="t",
        global_asset_id="SN2",
        description="node",
        elements=[nic],
        tags=["ran"],
    )
    wire = node.to_wire()
    assert wire["elements"][0]["globalAssetId"] == "SN1"
    assert wire["tags"] == ["ran"] and wire["groups"] == []
    assert node.parent_id == "p"


def test_models_refuse_unknown_and_invalid_fields() -> None:
    with pytest.raises(ValidationError):
        ResourceType(
            resource_type_id="t",
            name="n",
            description="d",
            vendor="v",
            model="m",
            version="1",
            resource_kind="VIRTUAL",
            resource_class="COMPUTE",
        )
    with pytest.raises(ValidationError):
        DeploymentManager.model_validate({"deploymentManagerId": "x", "bogus": 1})


def test_every_kind_has_a_model_with_an_id_attribute() -> None:
    for kind, model in MODEL_OF_KIND.items():
        assert model.kind is kind
        wire_names = {info.alias or name for name, info in model.model_fields.items()}
        assert model.id_attribute in wire_names
    assert ObjectKind.CLOUD not in MODEL_OF_KIND
