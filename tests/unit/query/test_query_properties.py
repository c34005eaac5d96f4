"""Property tests: the query code never fails in unexpected ways on arbitrary input."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from netweave.errors import InvalidQueryError
from netweave.query import (
    AttributeShape,
    Filter,
    Operator,
    PageMarkers,
    Term,
    parse_field_selection,
    parse_filter,
)

FAST = settings(max_examples=250, deadline=None, database=None)

SCHEMA = {
    "name": AttributeShape.SCALAR,
    "count": AttributeShape.SCALAR,
    "extensions": AttributeShape.OBJECT,
    "tags": AttributeShape.ARRAY,
    "elements": AttributeShape.ARRAY,
}
KEYS = [*SCHEMA, "zone", "id", "x"]

# -- strategies -----------------------------------------------------------------------------

GRAMMAR_TOKENS = [
    "(", ")", ",", ";", "'", "''", "|", "[", "]", "/", " ", "\t",
    "eq", "neq", "in", "nin", "gt", "cont", "eqq", "name", "extensions", "a", "1", "-2.5",
]  # fmt: skip

grammar_text = st.one_of(
    st.lists(st.sampled_from(GRAMMAR_TOKENS), max_size=30).map("".join),
    st.text(alphabet="(),;'|[]/ eqnameinxz01", max_size=40),
)

segment = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
        blacklist_characters=",()/;'[]|",
    ),
    min_size=1,
    max_size=8,
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["true", "FALSE", "1", "2.5", "a", ""]),
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), children, max_size=4
        ),
    ),
    max_leaves=20,
)
json_object = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), json_value)

filter_value = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["true", "False", "0", "1", "2.5", "-3", "1e3", "a", "", "'", "a b"]),
    st.integers().map(str),
    st.floats(allow_nan=False).map(repr),
)


@st.composite
def terms(draw: st.DrawFn, paths: st.SearchStrategy[tuple[str, ...]] | None = None) -> Term:
    op = draw(st.sampled_from(list(Operator)))
    if paths is None:
        paths = st.lists(segment, min_size=1, max_size=3).map(tuple)
    count = draw(st.integers(1, 4)) if op in (Operator.IN, Operator.NIN) else 1
    values = tuple(draw(filter_value) for _ in range(count))
    return Term(op, draw(paths), values)


def filters(term_strategy: st.SearchStrategy[Term]) -> st.SearchStrategy[Filter]:
    group = st.lists(term_strategy, min_size=1, max_size=3).map(tuple)
    return st.lists(group, min_size=1, max_size=3).map(lambda groups: Filter(tuple(groups)))


known_paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(tuple)


@st.composite
def near_valid_text(draw: st.DrawFn) -> str:
    """The text of a valid filter with a few random edits."""
    text = str(draw(filters(terms(known_paths))))
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        token = draw(st.sampled_from(GRAMMAR_TOKENS))
        if edit == "insert":
            text = text[:position] + token + text[position:]
        elif edit == "delete":
            text = text[:position] + text[position + 1 :]
        else:
            text = text[:position] + token + text[position + len(token) :]
    return text


# -- filters --------------------------------------------------------------------------------


def _parse_or_reject(text: str, **options: Any) -> None:
    try:
        parsed = parse_filter(text, **options)
    except InvalidQueryError as error:
        assert error.parameter == "filter"
        assert error.position is not None
        assert 0 <= error.position <= len(text)
        assert error.detail
        return
    assert isinstance(parsed, Filter)
    assert parse_filter(str(parsed), **options) == parsed


@FAST
@given(st.text())
def test_parse_arbitrary_text(text: str) -> None:
    _parse_or_reject(text)
    _parse_or_reject(text, allow_alternatives=True)


@FAST
@given(st.one_of(grammar_text, near_valid_text()), st.booleans(), st.booleans())
def test_parse_grammar_alphabet(text: str, alternatives: bool, with_schema: bool) -> None:
    schema = SCHEMA if with_schema else None
    _parse_or_reject(text, allow_alternatives=alternatives, schema=schema)


@FAST
@given(filters(terms()))
def test_canonical_form_round_trips(generated: Filter) -> None:
    text = str(generated)
    assert parse_filter(text, allow_alternatives=True) == generated
    if len(generated.alternatives) == 1:
        assert parse_filter(text) == generated


@FAST
@given(filters(terms(known_paths)), json_object)
def test_matching_never_raises(generated: Filter, obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    assert generated.matches(obj) in (True, False)
    assert obj == before


NEGATION = {Operator.EQ: Operator.NEQ, Operator.CONT: Operator.NCONT, Operator.IN: Operator.NIN}


@FAST
@given(terms(known_paths), json_object)
def test_negative_operators_are_complements(term: Term, obj: dict[str, Any]) -> None:
    for positive, negative in NEGATION.items():
        values = term.values if positive is Operator.IN else term.values[:1]
        assert Term(negative, term.path, values).matches(obj) is not (
            Term(positive, term.path, values).matches(obj)
        )


# -- field selection ------------------------------------------------------------------------

path_list = st.lists(
    st.tuples(st.sampled_from(list(SCHEMA)), st.lists(st.sampled_from(KEYS), max_size=2)).map(
        lambda parts: "/".join([parts[0], *parts[1]])
    ),
    min_size=1,
    max_size=4,
).map(",".join)


@FAST
@given(
    st.one_of(st.none(), path_list, st.text(max_size=12)),
    st.one_of(st.none(), path_list, st.text(max_size=12)),
    st.booleans(),
    st.booleans(),
    json_object,
)
def test_field_selection_never_raises_nor_mutates(
    fields: str | None,
    exclude_fields: str | None,
    all_fields: bool,
    exclude_default: bool,
    obj: dict[str, Any],
) -> None:
    try:
        selection = parse_field_selection(
            fields=fields,
            exclude_fields=exclude_fields,
            all_fields=all_fields,
            exclude_default=exclude_default,
            schema=SCHEMA,
        )
    except InvalidQueryError as error:
        assert error.parameter in ("fields", "exclude_fields")
        return
    if selection is None:
        return
    before = copy.deepcopy(obj)
    result = selection.apply(obj)
    assert obj == before
    assert result is not obj
    assert set(result) <= set(obj)


# -- paging markers -------------------------------------------------------------------------

MARKERS = PageMarkers(b"property-secret")
base64url_text = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=120
)


@FAST
@given(st.one_of(st.text(), base64url_text, st.binary().map(lambda b: b.decode("latin-1"))))
def test_verify_arbitrary_text(marker: str) -> None:
    try:
        MARKERS.verify(marker, scope="scope")
    except InvalidQueryError as error:
        assert error.parameter == "nextpage_opaque_marker"


@FAST
@given(st.text(), st.text())
def test_markers_round_trip(after: str, scope: str) -> None:
    marker = MARKERS.issue(scope=scope, after=after)
    assert marker.isascii()
    assert MARKERS.verify(marker, scope=scope) == after
