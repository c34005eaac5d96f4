"""Attribute schemas derived from wire models, and path checks against them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from netweave.errors import InvalidQueryError
from netweave.models.inventory import LocationInfo, Resource, ResourcePool
from netweave.query import AttributeShape, check_path, schema_of

SCALAR, OBJECT, ARRAY = AttributeShape.SCALAR, AttributeShape.OBJECT, AttributeShape.ARRAY


class Inner(BaseModel):
    x: int


class Assorted(BaseModel):
    plain: str
    number: int | None = None
    choice: Literal["a", "b"] = "a"
    mapping: Mapping[str, str] = Field(default_factory=dict)
    sequence: Sequence[int] = ()
    fixed: tuple[int, int] = (0, 0)
    unique: set[str] = Field(default_factory=set)
    annotated: Annotated[list[int], Field(max_length=3)] = Field(default_factory=list)
    nested: Inner | None = None
    anything: Any = None
    mixed: int | list[int] = 0
    either: int | dict[str, int] = 0
    renamed: str = Field(default="", alias="wireName")


def test_schema_uses_wire_names_and_shapes() -> None:
    assert schema_of(Resource) == {
        "resourceId": SCALAR,
        "resourcePoolId": SCALAR,
        "resourceTypeId": SCALAR,
        "globalAssetId": SCALAR,
        "description": SCALAR,
        "elements": ARRAY,
        "tags": ARRAY,
        "groups": ARRAY,
        "extensions": OBJECT,
    }


def test_schema_handles_optionals() -> None:
    schema = schema_of(LocationInfo)
    assert schema["coordinate"] is OBJECT
    assert schema["civicAddress"] is ARRAY
    assert schema["address"] is SCALAR
    assert schema["oCloudSiteIds"] is ARRAY


def test_schema_of_explicit_aliases() -> None:
    schema = schema_of(ResourcePool)
    assert "oCloudId" in schema
    assert "oCloudSiteId" in schema
    assert "o_cloud_id" not in schema


def test_schema_of_assorted_annotations() -> None:
    assert schema_of(Assorted) == {
        "plain": SCALAR,
        "number": SCALAR,
        "choice": SCALAR,
        "mapping": OBJECT,
        "sequence": ARRAY,
        "fixed": ARRAY,
        "unique": ARRAY,
        "annotated": ARRAY,
        "nested": OBJECT,
        "anything": OBJECT,
        "mixed": ARRAY,
        "either": OBJECT,
        "wireName": SCALAR,
    }


def test_schema_extra_adds_pseudo_attributes() -> None:
    schema = schema_of(Resource, extra={"objectType": SCALAR})
    assert schema["objectType"] is SCALAR
    assert schema["resourceId"] is SCALAR


SCHEMA = {"name": SCALAR, "extensions": OBJECT, "elements": ARRAY}


@pytest.mark.parametrize(
    "path",
    [
        ("name",),
        ("extensions",),
        ("extensions", "zone"),
        ("extensions", "a", "b", "c"),
        ("elements",),
        ("elements", "resourceId"),
        ("elements", "extensions", "zone"),
    ],
)
def test_valid_paths(path: tuple[str, ...]) -> None:
    check_path(path, SCHEMA, parameter="filter")


@pytest.mark.parametrize(
    ("path", "position", "detail", "reported"),
    [
        (("foo",), 4, "unknown attribute 'foo' at position 4", 4),
        (("foo", "bar"), 0, "unknown attribute 'foo' at position 0", 0),
        (("name", "x"), 4, "attribute 'name' has no sub-attribute 'x' at position 9", 9),
        (("name", "x", "y"), 0, "attribute 'name' has no sub-attribute 'x' at position 5", 5),
        (("",), 3, "empty attribute name in path at position 3", 3),
        (("extensions", "", "x"), 0, "empty attribute name in path at position 11", 11),
        (("extensions", "x", ""), 0, "empty attribute name in path at position 13", 13),
        ((), 2, "empty attribute path at position 2", 2),
    ],
)
def test_invalid_paths(path: tuple[str, ...], position: int, detail: str, reported: int) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        check_path(path, SCHEMA, parameter="fields", position=position)
    assert caught.value.detail == detail
    assert caught.value.position == reported
    assert caught.value.parameter == "fields"
    assert caught.value.attributes == {"parameter": "fields", "position": str(reported)}
    assert caught.value.status == 400


def test_invalid_path_without_position() -> None:
    with pytest.raises(InvalidQueryError) as caught:
        check_path(("nope",), SCHEMA, parameter="filter")
    assert caught.value.detail == "unknown attribute 'nope'"
    assert caught.value.position is None
