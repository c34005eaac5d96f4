"""Matching semantics of filters against JSON objects."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from netweave.query import parse_filter

OBJ: dict[str, Any] = {
    "name": "edge-1",
    "description": "my cluster, west",
    "count": 5,
    "ratio": 0.5,
    "big": 2**70,
    "enabled": True,
    "disabled": False,
    "nothing": None,
    "tags": ["alpha", "beta"],
    "empty": [],
    "nums": [1, 2, 30],
    "matrix": [[1, 2], [3, ["deep"]]],
    "extensions": {"zone": "z1", "rack": {"row": 3}, "labels": {"tier": "gold"}},
    "elements": [
        {"id": "e1", "cpu": 4, "labels": ["x"]},
        {"id": "e2", "cpu": 8, "labels": ["y", "z"], "extra": {"k": "v"}},
        "not-an-object",
    ],
}


def matches(text: str, obj: dict[str, Any] = OBJ) -> bool:
    return parse_filter(text).matches(obj)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # strings
        ("(eq,name,edge-1)", True),
        ("(eq,name,edge-2)", False),
        ("(eq,name,EDGE-1)", False),
        ("(neq,name,edge-2)", True),
        ("(neq,name,edge-1)", False),
        ("(eq,description,'my cluster, west')", True),
        ("(gt,name,edge-0)", True),
        ("(gt,name,edge-1)", False),
        ("(gte,name,edge-1)", True),
        ("(lt,name,f)", True),
        ("(lt,name,edge-1)", False),
        ("(lte,name,edge-1)", True),
        ("(lt,name,Z)", False),  # lexicographic: 'e' > 'Z'
        ("(cont,name,dge)", True),
        ("(cont,name,xyz)", False),
        ("(ncont,name,xyz)", True),
        ("(ncont,name,dge)", False),
        ("(cont,description,'cluster, w')", True),
        ("(in,name,a,edge-1,b)", True),
        ("(in,name,a,b)", False),
        ("(nin,name,a,b)", True),
        ("(nin,name,a,edge-1)", False),
        # numbers
        ("(eq,count,5)", True),
        ("(eq,count,5.0)", True),
        ("(eq,count,+5)", True),
        ("(eq,count,05)", True),
        ("(eq,count,6)", False),
        ("(neq,count,6)", True),
        ("(gt,count,4)", True),
        ("(gt,count,5)", False),
        ("(gte,count,5)", True),
        ("(lt,count,10)", True),  # numeric, not lexicographic
        ("(lte,count,4.99)", False),
        ("(eq,ratio,0.5)", True),
        ("(eq,ratio,.5)", True),
        ("(eq,ratio,5e-1)", True),
        ("(lt,ratio,1)", True),
        ("(in,count,1,5)", True),
        ("(nin,count,1,5)", False),
        ("(nin,count,1,2)", True),
        ("(eq,big,1180591620717411303424)", True),
        ("(eq,big,1180591620717411303425)", False),
        ("(gt,big,1180591620717411303423)", True),
        ("(cont,count,5)", True),
        ("(cont,ratio,.5)", True),
        ("(ncont,count,7)", True),
        # non-numeric values against numbers never match positive operators
        ("(eq,count,five)", False),
        ("(gt,count,abc)", False),
        ("(lt,count,abc)", False),
        ("(eq,count,nan)", False),
        ("(eq,count,inf)", False),
        ("(eq,count,1_0)", False),
        ("(neq,count,five)", True),
        # bools
        ("(eq,enabled,true)", True),
        ("(eq,enabled,TRUE)", True),
        ("(eq,enabled,True)", True),
        ("(eq,enabled,false)", False),
        ("(eq,enabled,1)", False),
        ("(eq,disabled,false)", True),
        ("(neq,enabled,false)", True),
        ("(neq,enabled,true)", False),
        ("(in,enabled,yes,true)", True),
        ("(nin,enabled,false,no)", True),
        ("(nin,enabled,TRUE)", False),
        ("(gt,enabled,false)", False),
        ("(lte,enabled,true)", False),
        ("(cont,enabled,ru)", True),
        ("(ncont,disabled,ru)", True),
        # null
        ("(eq,nothing,null)", False),
        ("(eq,nothing,None)", False),
        ("(neq,nothing,null)", True),
        ("(cont,nothing,n)", False),
        ("(gt,nothing,a)", False),
        ("(nin,nothing,a)", True),
        # objects never match positive operators
        ("(eq,extensions,z1)", False),
        ("(cont,extensions,zone)", False),
        ("(neq,extensions,z1)", True),
        # nested paths
        ("(eq,extensions/zone,z1)", True),
        ("(eq,extensions/zone,z2)", False),
        ("(eq,extensions/rack/row,3)", True),
        ("(gt,extensions/rack/row,2)", True),
        ("(eq,extensions/labels/tier,gold)", True),
        ("(eq,extensions/zone/deeper,z1)", False),
        ("(neq,extensions/zone/deeper,z1)", True),
    ],
)
def test_scalar_semantics(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # any element for positive operators
        ("(eq,tags,alpha)", True),
        ("(eq,tags,beta)", True),
        ("(eq,tags,gamma)", False),
        ("(cont,tags,lph)", True),
        ("(in,tags,x,beta)", True),
        ("(gt,nums,25)", True),
        ("(gt,nums,30)", False),
        ("(lt,nums,2)", True),
        # no element for negative operators
        ("(neq,tags,gamma)", True),
        ("(neq,tags,alpha)", False),
        ("(ncont,tags,lph)", False),
        ("(ncont,tags,zzz)", True),
        ("(nin,tags,x,y)", True),
        ("(nin,tags,x,beta)", False),
        # empty list: like a missing attribute
        ("(eq,empty,a)", False),
        ("(neq,empty,a)", True),
        ("(nin,empty,a)", True),
        # nested lists are flattened
        ("(eq,matrix,3)", True),
        ("(eq,matrix,deep)", True),
        ("(neq,matrix,deep)", False),
        # paths through arrays of objects collect from every element
        ("(eq,elements/id,e2)", True),
        ("(eq,elements/id,e3)", False),
        ("(neq,elements/id,e1)", False),
        ("(neq,elements/id,e3)", True),
        ("(gte,elements/cpu,8)", True),
        ("(gt,elements/cpu,8)", False),
        ("(eq,elements/labels,z)", True),
        ("(nin,elements/labels,w)", True),
        ("(nin,elements/labels,w,x)", False),
        ("(eq,elements/extra/k,v)", True),
        ("(neq,elements/extra/k,v)", False),
        ("(eq,elements/missing,v)", False),
        ("(neq,elements/missing,v)", True),
    ],
)
def test_list_semantics(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("eq", False),
        ("gt", False),
        ("gte", False),
        ("lt", False),
        ("lte", False),
        ("cont", False),
        ("in", False),
        ("neq", True),
        ("ncont", True),
        ("nin", True),
    ],
)
def test_missing_attribute(op: str, expected: bool) -> None:
    assert matches(f"({op},absent,x)") is expected
    assert matches(f"({op},extensions/absent,x)") is expected
    assert matches(f"({op},absent/deeper/still,x)") is expected


def test_empty_string_value() -> None:
    assert matches("(eq,name,'')", {"name": ""})
    assert not matches("(eq,name,'')", {"name": "x"})
    assert matches("(cont,name,'')", {"name": "x"})


def test_quoted_quote_value() -> None:
    assert matches("(eq,name,'it''s')", {"name": "it's"})


def test_conjunction_requires_every_term() -> None:
    assert matches("(eq,name,edge-1);(gt,count,1)")
    assert not matches("(eq,name,edge-1);(gt,count,10)")
    assert not matches("(eq,name,nope);(gt,count,1)")


def test_alternatives_require_one_group() -> None:
    parsed = parse_filter(
        "[(eq,objectType,ResourcePoolInfo);(eq,name,x)|(eq,objectType,ResourceInfo)]",
        allow_alternatives=True,
    )
    assert parsed.matches({"objectType": "ResourcePoolInfo", "name": "x"})
    assert not parsed.matches({"objectType": "ResourcePoolInfo", "name": "y"})
    assert parsed.matches({"objectType": "ResourceInfo", "name": "y"})
    assert not parsed.matches({"objectType": "CloudInfo"})


def test_number_values_against_string_attributes_compare_as_strings() -> None:
    assert matches("(eq,code,007)", {"code": "007"})
    assert not matches("(eq,code,7)", {"code": "007"})
    assert matches("(lt,code,10)", {"code": "09"})
    assert not matches("(lt,code,10)", {"code": "9"})


def test_huge_numbers_do_not_raise() -> None:
    digits = "9" * 5000
    assert matches(f"(lt,count,{digits})", {"count": 5})
    assert not matches(f"(eq,count,{digits})", {"count": 5})
    assert matches("(lt,count,1e400)", {"count": 5})
    assert not matches("(cont,count,9)", {"count": 10**5000})


def test_non_dict_mappings_and_tuples_are_resolved() -> None:
    obj = MappingProxyType({"a": ({"b": "x"}, {"b": "y"})})
    assert parse_filter("(eq,a/b,y)").matches(obj)
    assert not parse_filter("(neq,a/b,y)").matches(obj)


def test_unusual_values_never_match_positive_operators() -> None:
    obj = {"a": object(), "b": b"bytes", "c": 1 + 2j}
    for path in ("a", "b", "c"):
        assert not parse_filter(f"(eq,{path},x)").matches(obj)
        assert parse_filter(f"(neq,{path},x)").matches(obj)
