"""Attribute selection: fields, exclude_fields, all_fields, exclude_default."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netweave.errors import InvalidQueryError
from netweave.models.inventory import Resource
from netweave.query import AttributeShape, FieldSelection, parse_field_selection, schema_of

SCHEMA = schema_of(Resource)

OBJ: dict[str, Any] = {
    "resourceId": "r1",
    "resourcePoolId": "p1",
    "resourceTypeId": "t1",
    "globalAssetId": "g1",
    "description": "a node",
    "elements": [
        {"resourceId": "r1a", "description": "nic", "extensions": {"speed": 10}},
        {"resourceId": "r1b", "extensions": {"speed": 25, "vendor": "acme"}},
        "stray",
    ],
    "tags": ["edge", "gpu"],
    "groups": [],
    "extensions": {"zone": "z1", "rack": {"row": 3, "slot": 7}},
}


def select(
    *,
    fields: str | None = None,
    exclude_fields: str | None = None,
    all_fields: bool = False,
    exclude_default: bool = False,
) -> FieldSelection | None:
    return parse_field_selection(
        fields=fields,
        exclude_fields=exclude_fields,
        all_fields=all_fields,
        exclude_default=exclude_default,
        schema=SCHEMA,
    )


def apply(**params: Any) -> dict[str, Any]:
    selection = select(**params)
    assert selection is not None
    before = copy.deepcopy(OBJ)
    result = selection.apply(OBJ)
    assert before == OBJ, "apply mutated its input"
    return result


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"all_fields": True},
        {"all_fields": True, "exclude_default": True},
        {"all_fields": True, "fields": "tags"},
        {"all_fields": True, "fields": "extensions/zone", "exclude_default": True},
    ],
)
def test_whole_object_is_none(params: dict[str, Any]) -> None:
    assert select(**params) is None


def test_fields_keeps_only_those() -> None:
    assert apply(fields="resourceId,tags") == {"resourceId": "r1", "tags": ["edge", "gpu"]}


def test_fields_keeps_object_order() -> None:
    assert list(apply(fields="tags,resourceId")) == ["resourceId", "tags"]


def test_nested_field_keeps_nesting() -> None:
    assert apply(fields="extensions/zone") == {"extensions": {"zone": "z1"}}
    assert apply(fields="extensions/rack/slot") == {"extensions": {"rack": {"slot": 7}}}
    assert apply(fields="extensions/zone,extensions/rack/row") == {
        "extensions": {"zone": "z1", "rack": {"row": 3}}
    }


def test_whole_attribute_wins_over_its_sub_path() -> None:
    whole = {"extensions": OBJ["extensions"]}
    assert apply(fields="extensions/zone,extensions") == whole
    assert apply(fields="extensions,extensions/zone") == whole


def test_nested_field_through_array_of_objects() -> None:
    assert apply(fields="elements/resourceId") == {
        "elements": [{"resourceId": "r1a"}, {"resourceId": "r1b"}]
    }
    assert apply(fields="elements/extensions/vendor") == {
        "elements": [{"extensions": {"vendor": "acme"}}]
    }


def test_missing_paths_are_absent() -> None:
    assert apply(fields="extensions/missing") == {}
    assert apply(fields="extensions/zone/deeper") == {}
    assert apply(fields="elements/missing") == {}
    assert apply(fields="groups/anything") == {}
    assert apply(fields="tags/anything") == {}
    assert apply(fields="resourceId,extensions/missing") == {"resourceId": "r1"}
    selection = select(fields="extensions/zone")
    assert selection is not None
    assert selection.apply({"resourceId": "r2"}) == {}
    assert selection.apply({"extensions": "not an object"}) == {}


def test_exclude_fields() -> None:
    result = apply(exclude_fields="elements,tags,extensions/rack")
    assert result == {
        "resourceId": "r1",
        "resourcePoolId": "p1",
        "resourceTypeId": "t1",
        "globalAssetId": "g1",
        "description": "a node",
        "groups": [],
        "extensions": {"zone": "z1"},
    }


def test_exclude_fields_through_arrays() -> None:
    result = apply(exclude_fields="elements/extensions")
    assert result["elements"] == [
        {"resourceId": "r1a", "description": "nic"},
        {"resourceId": "r1b"},
        "stray",
    ]


def test_exclude_missing_paths_is_harmless() -> None:
    assert apply(exclude_fields="extensions/nope,elements/nope") == OBJ


def test_exclude_wins_over_fields() -> None:
    assert apply(fields="resourceId,extensions", exclude_fields="extensions/rack") == {
        "resourceId": "r1",
        "extensions": {"zone": "z1"},
    }
    assert apply(fields="resourceId,tags", exclude_fields="tags") == {"resourceId": "r1"}
    assert apply(fields="extensions/zone", exclude_fields="extensions") == {}


def test_exclude_default_drops_complex_attributes() -> None:
    assert apply(exclude_default=True) == {
        "resourceId": "r1",
        "resourcePoolId": "p1",
        "resourceTypeId": "t1",
        "globalAssetId": "g1",
        "description": "a node",
    }


def test_exclude_default_with_fields_adds_them_back() -> None:
    result = apply(exclude_default=True, fields="tags,extensions/zone")
    assert result == {
        "resourceId": "r1",
        "resourcePoolId": "p1",
        "resourceTypeId": "t1",
        "globalAssetId": "g1",
        "description": "a node",
        "tags": ["edge", "gpu"],
        "extensions": {"zone": "z1"},
    }


def test_exclude_default_with_exclude_fields() -> None:
    result = apply(exclude_default=True, exclude_fields="description")
    assert "description" not in result
    assert "tags" not in result
    assert result["resourceId"] == "r1"


def test_all_fields_with_exclude_fields() -> None:
    result = apply(all_fields=True, fields="resourceId", exclude_fields="tags,elements")
    assert set(result) == set(OBJ) - {"tags", "elements"}


def test_all_fields_overrides_exclude_default() -> None:
    result = apply(all_fields=True, exclude_default=True, exclude_fields="tags")
    assert "extensions" in result
    assert "tags" not in result


def test_exclude_default_keeps_unknown_keys() -> None:
    selection = select(exclude_default=True)
    assert selection is not None
    assert selection.apply({"resourceId": "r", "custom": [1]}) == {
        "resourceId": "r",
        "custom": [1],
    }


def test_result_is_a_new_dict_and_untouched_values_are_shared() -> None:
    selection = select(exclude_fields="extensions/rack")
    assert selection is not None
    result = selection.apply(OBJ)
    assert result is not OBJ
    assert result["extensions"] is not OBJ["extensions"]
    assert result["tags"] is OBJ["tags"]
    assert "rack" in OBJ["extensions"]


def test_selections_compare_by_value() -> None:
    assert select(fields="resourceId,tags") == select(fields="resourceId,tags")
    assert hash(select(fields="resourceId")) == hash(select(fields="resourceId"))
    assert select(fields="tags") != select(exclude_fields="tags")


@pytest.mark.parametrize(
    ("params", "parameter", "detail", "position"),
    [
        ({"fields": "resourceId,nope"}, "fields", "unknown attribute 'nope' at position 11", 11),
        ({"fields": "a,,b"}, "fields", "unknown attribute 'a' at position 0", 0),
        (
            {"fields": "resourceId,,tags"},
            "fields",
            "empty entry in the attribute list at position 11",
            11,
        ),
        ({"fields": ""}, "fields", "empty entry in the attribute list at position 0", 0),
        ({"fields": "tags,"}, "fields", "empty entry in the attribute list at position 5", 5),
        ({"fields": ",tags"}, "fields", "empty entry in the attribute list at position 0", 0),
        (
            {"fields": "resourceId/x"},
            "fields",
            "attribute 'resourceId' has no sub-attribute 'x' at position 11",
            11,
        ),
        (
            {"fields": "extensions//zone"},
            "fields",
            "empty attribute name in path at position 11",
            11,
        ),
        ({"fields": "tags, groups"}, "fields", "unknown attribute ' groups' at position 5", 5),
        (
            {"exclude_fields": "tags,colour"},
            "exclude_fields",
            "unknown attribute 'colour' at position 5",
            5,
        ),
        (
            {"exclude_fields": ""},
            "exclude_fields",
            "empty entry in the attribute list at position 0",
            0,
        ),
        (
            {"all_fields": True, "fields": "nope"},
            "fields",
            "unknown attribute 'nope' at position 0",
            0,
        ),
    ],
)
def test_invalid_selections(
    params: dict[str, Any], parameter: str, detail: str, position: int
) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        select(**params)
    assert caught.value.detail == detail
    assert caught.value.parameter == parameter
    assert caught.value.position == position


def test_schema_without_complex_attributes() -> None:
    schema = {"id": AttributeShape.SCALAR, "name": AttributeShape.SCALAR}
    selection = parse_field_selection(
        fields=None, exclude_fields=None, all_fields=False, exclude_default=True, schema=schema
    )
    assert selection is None
