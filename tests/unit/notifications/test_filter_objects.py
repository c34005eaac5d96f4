"""The object form of subscription filters: translation, quoting, and refusals."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netweave.errors import InvalidRequestError
from netweave.notifications.filter_objects import filter_from_object, filter_text
from netweave.notifications.matching import parse_subscription_filter
from netweave.query.filters import Operator, Term, parse_filter

FAST = settings(max_examples=300, deadline=None, database=None)


def terms_of(text: str) -> tuple[Term, ...]:
    """The terms ``text`` parses to: one alternative, as the object form always makes."""
    [terms] = parse_filter(text).alternatives
    return terms


def eq(path: str, value: str) -> Term:
    return Term(Operator.EQ, tuple(path.split("/")), (value,))


def in_(path: str, *values: str) -> Term:
    return Term(Operator.IN, tuple(path.split("/")), values)


@pytest.mark.parametrize(
    ("obj", "text", "terms"),
    [
        ({"resourcePoolId": "abc"}, "(eq,resourcePoolId,abc)", (eq("resourcePoolId", "abc"),)),
        (
            {"objectType": "ResourcePoolInfo", "resourcePoolId": "abc"},
            "(eq,objectType,ResourcePoolInfo);(eq,resourcePoolId,abc)",
            (eq("objectType", "ResourcePoolInfo"), eq("resourcePoolId", "abc")),
        ),
        (
            {"extensions/zone": ["a", "b"]},
            "(in,extensions/zone,a,b)",
            (in_("extensions/zone", "a", "b"),),
        ),
        ({"n": ["only"]}, "(in,n,only)", (in_("n", "only"),)),
        ({"count": 5}, "(eq,count,5)", (eq("count", "5"),)),
        ({"count": -2.5}, "(eq,count,-2.5)", (eq("count", "-2.5"),)),
        ({"count": 1e100}, "(eq,count,1e+100)", (eq("count", "1e+100"),)),
        (
            {"on": True, "off": False},
            "(eq,on,true);(eq,off,false)",
            (eq("on", "true"), eq("off", "false")),
        ),
        ({"mixed": ["x", 1, True]}, "(in,mixed,x,1,true)", (in_("mixed", "x", "1", "true"),)),
        ({"name": "my pool"}, "(eq,name,'my pool')", (eq("name", "my pool"),)),
        ({"name": ""}, "(eq,name,'')", (eq("name", ""),)),
        ({"name": "o'neil"}, "(eq,name,'o''neil')", (eq("name", "o'neil"),)),
        ({"name": "a,b)c"}, "(eq,name,'a,b)c')", (eq("name", "a,b)c"),)),
        ({"name": "x/y;z"}, "(eq,name,'x/y;z')", (eq("name", "x/y;z"),)),
        ({"name": "tab\there"}, "(eq,name,'tab\there')", (eq("name", "tab\there"),)),
        # characters special only outside values stay bare: the grammar allows them there
        ({"name": "a|b[c](d"}, "(eq,name,a|b[c](d)", (eq("name", "a|b[c](d"),)),
        ({"a/b/c": "''"}, "(eq,a/b/c,'''''')", (eq("a/b/c", "''"),)),
    ],
)
def test_objects_become_the_sol013_text_that_parses_back(
    obj: dict[str, Any], text: str, terms: tuple[Term, ...]
) -> None:
    produced = filter_from_object(obj)
    assert produced == text
    assert terms_of(produced) == terms


def test_keys_keep_the_client_s_order() -> None:
    assert filter_from_object({"b": 1, "a": 2}) == "(eq,b,1);(eq,a,2)"
    assert filter_from_object({"a": 2, "b": 1}) == "(eq,a,2);(eq,b,1)"


def test_the_text_is_a_valid_subscription_filter_over_real_attributes() -> None:
    text = filter_from_object(
        {"objectType": ["ResourcePoolInfo", "ResourceInfo"], "extensions/zone": "edge 1"}
    )
    parsed = parse_subscription_filter(text)
    assert parsed is not None
    pool = {"objectType": "ResourcePoolInfo", "extensions": {"zone": "edge 1"}}
    assert parsed.matches(pool)
    assert not parsed.matches({**pool, "extensions": {"zone": "edge 2"}})
    assert not parsed.matches({**pool, "objectType": "DeploymentManagerInfo"})


def test_filter_text_passes_strings_and_none_through() -> None:
    assert filter_text(None) is None
    assert filter_text("(eq,a,1)") == "(eq,a,1)"
    assert filter_text("not even a filter") == "not even a filter"  # the service parses it
    assert filter_text({"a": 1}) == "(eq,a,1)"


@pytest.mark.parametrize(
    ("obj", "key", "fragment"),
    [
        ({"a": None}, "a", "not null"),
        ({"a": {"b": 1}}, "a", "not an object"),
        ({"a": []}, "a", "empty list"),
        ({"a": [None]}, "a", "not null"),
        ({"a": [[1]]}, "a", "not a list"),
        ({"a": ["x", {"y": 1}]}, "a", "not an object"),
        ({"a": math.nan}, "a", "not a JSON number"),
        ({"a": [math.inf]}, "a", "not a JSON number"),
        ({"ok": 1, "b": -math.inf}, "b", "not a JSON number"),
        ({"": "x"}, "", "empty"),
        ({"a//b": "x"}, "a//b", "empty segment"),
        ({"/a": "x"}, "/a", "empty segment"),
        ({"a/": "x"}, "a/", "empty segment"),
        ({"a b": "x"}, "a b", "cannot hold"),
        ({"a,b": "x"}, "a,b", "cannot hold"),
        ({"a(b": "x"}, "a(b", "cannot hold"),
        ({"a)": "x"}, "a)", "cannot hold"),
        ({"a;b": "x"}, "a;b", "cannot hold"),
        ({"a'b": "x"}, "a'b", "cannot hold"),
        ({"a|b": "x"}, "a|b", "cannot hold"),
        ({"[a]": "x"}, "[a]", "cannot hold"),
        ({"ext/a\tb": "x"}, "ext/a\tb", "cannot hold"),
    ],
)
def test_shapes_without_a_sol013_form_are_400_naming_the_key(
    obj: dict[str, Any], key: str, fragment: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        filter_from_object(obj)
    error = caught.value
    assert error.status == 400
    assert error.attributes == {"parameter": "filter", "key": key}
    assert repr(key) in error.detail
    assert fragment in error.detail


def test_an_empty_object_is_400() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        filter_from_object({})
    assert "at least one attribute" in caught.value.detail
    assert caught.value.attributes == {"parameter": "filter"}


# -- properties ------------------------------------------------------------------------------

segment = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
        blacklist_characters=",()/;'[]|",
    ),
    min_size=1,
    max_size=8,
)
scalar = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["", "'", "''", ",", ")", "a b", "x/y", ";", "true", "1e3", "(eq,a,1)"]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
value = st.one_of(scalar, st.lists(scalar, min_size=1, max_size=4))


@FAST
@given(st.dictionaries(segment, value, min_size=1, max_size=5))
def test_every_object_round_trips_and_matches_itself(obj: dict[str, Any]) -> None:
    text = filter_from_object(obj)
    terms = terms_of(text)
    assert [term.path for term in terms] == [(key,) for key in obj]
    for term, given_value in zip(terms, obj.values(), strict=True):
        listed = given_value if isinstance(given_value, list) else [given_value]
        assert term.op is (Operator.IN if isinstance(given_value, list) else Operator.EQ)
        assert term.values == tuple(_expected_text(item) for item in listed)
    # the filter selects the very object it was written from, and its values
    assert parse_filter(text).matches(obj)
    document = {key: v[0] if isinstance(v, list) else v for key, v in obj.items()}
    assert parse_filter(text).matches(document)


@FAST
@given(st.lists(segment, min_size=1, max_size=4), scalar)
def test_attribute_paths_round_trip(path: list[str], item: Any) -> None:
    key = "/".join(path)
    [term] = terms_of(filter_from_object({key: item}))
    assert term.path == tuple(path)
    nested: Any = item
    for name in reversed(path):
        nested = {name: nested}
    assert term.matches(nested)


def _expected_text(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float):
        return repr(item)
    return str(item)
