"""Parsing of the SOL013 filter language: grammar, quoting, alternatives, errors, schema."""

from __future__ import annotations

import pytest

from netweave.errors import InvalidQueryError
from netweave.query import AttributeShape, Filter, Operator, Term, parse_filter

SCHEMA = {
    "name": AttributeShape.SCALAR,
    "objectType": AttributeShape.SCALAR,
    "extensions": AttributeShape.OBJECT,
    "tags": AttributeShape.ARRAY,
}


def one(op: Operator, path: str, *values: str) -> Term:
    return Term(op, tuple(path.split("/")), values)


def test_single_term() -> None:
    assert parse_filter("(eq,name,edge)") == Filter(((one(Operator.EQ, "name", "edge"),),))


def test_conjunction_and_nested_path() -> None:
    parsed = parse_filter("(eq,name,'my cluster');(in,extensions/country,ES,US)")
    assert parsed.alternatives == (
        (
            one(Operator.EQ, "name", "my cluster"),
            one(Operator.IN, "extensions/country", "ES", "US"),
        ),
    )
    assert list(parsed.terms()) == list(parsed.alternatives[0])


@pytest.mark.parametrize("op", list(Operator))
def test_every_operator_parses(op: Operator) -> None:
    assert parse_filter(f"({op},name,v)") == Filter(((one(op, "name", "v"),),))


@pytest.mark.parametrize("op", [Operator.IN, Operator.NIN])
def test_multi_valued_operators(op: Operator) -> None:
    parsed = parse_filter(f"({op},name,a,'b c',d)")
    assert next(parsed.terms()).values == ("a", "b c", "d")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("(eq,name,'my cluster')", "my cluster"),
        ("(eq,name,'a,b')", "a,b"),
        ("(eq,name,'a)b')", "a)b"),
        ("(eq,name,'a/b')", "a/b"),
        ("(eq,name,'a;b')", "a;b"),
        ("(eq,name,'')", ""),
        ("(eq,name,'it''s')", "it's"),
        ("(eq,name,'''')", "'"),
        ("(eq,name,'''quoted''')", "'quoted'"),
        ("(eq,name,'a|b[c]')", "a|b[c]"),
        ("(eq,name,a|b)", "a|b"),
        ("(eq,name,f(x)", "f(x"),
        ("(eq,name,[x])", "[x]"),
        ("(eq,name,ünïcødé)", "ünïcødé"),
        ("(eq,name,'tab\there')", "tab\there"),
        ("(eq,name,-1.5e3)", "-1.5e3"),
    ],
)
def test_values(text: str, value: str) -> None:
    assert next(parse_filter(text).terms()).values == (value,)


def test_alternatives_bracketed() -> None:
    parsed = parse_filter(
        "[(eq,objectType,ResourcePoolInfo);(eq,name,x)|(eq,objectType,ResourceInfo)]",
        allow_alternatives=True,
    )
    assert parsed.alternatives == (
        (one(Operator.EQ, "objectType", "ResourcePoolInfo"), one(Operator.EQ, "name", "x")),
        (one(Operator.EQ, "objectType", "ResourceInfo"),),
    )
    assert len(list(parsed.terms())) == 3


def test_alternatives_without_brackets() -> None:
    parsed = parse_filter("(eq,name,a)|(eq,name,b)", allow_alternatives=True)
    assert len(parsed.alternatives) == 2


def test_brackets_around_a_single_group() -> None:
    assert parse_filter("[(eq,name,a)]", allow_alternatives=True) == parse_filter("(eq,name,a)")


@pytest.mark.parametrize(
    "text",
    [
        "(eq,name,edge)",
        "(eq,name,'my cluster');(in,extensions/country,ES,US)",
        "(eq,name,'')",
        "(eq,name,'it''s')",
        "(nin,tags,a,'b,c','d)')",
        "(cont,extensions/a/b,'x/y')",
    ],
)
def test_canonical_form_is_stable(text: str) -> None:
    parsed = parse_filter(text)
    assert str(parsed) == text
    assert parse_filter(str(parsed)) == parsed


def test_canonical_form_of_alternatives() -> None:
    parsed = parse_filter("(eq,name,a);(neq,name,b)|(gt,name,c)", allow_alternatives=True)
    assert str(parsed) == "[(eq,name,a);(neq,name,b)|(gt,name,c)]"
    assert parse_filter(str(parsed), allow_alternatives=True) == parsed


def test_canonical_form_quotes_only_when_needed() -> None:
    term = one(Operator.IN, "name", "plain", "", "with space", "a'b", "x;y", "p(q")
    assert str(term) == "(in,name,plain,'','with space','a''b','x;y',p(q)"


def test_terms_are_hashable_and_compare_by_value() -> None:
    first, second = parse_filter("(eq,name,a)"), parse_filter("(eq,name,a)")
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse_filter("(eq,name,b)")


def test_term_accepts_plain_operator_string() -> None:
    term = Term("eq", ("name",), ("a",))  # type: ignore[arg-type]
    assert term.op is Operator.EQ
    assert term.matches({"name": "a"})


@pytest.mark.parametrize(
    ("op", "path", "values", "problem"),
    [
        ("eq", ("name",), (), "does not take 0 values"),
        ("eq", ("name",), ("a", "b"), "does not take 2 values"),
        ("in", ("name",), (), "does not take 0 values"),
        ("eq", (), ("a",), "needs an attribute path"),
        ("equals", ("name",), ("a",), "not a valid Operator"),
    ],
)
def test_term_rejects_invalid_construction(
    op: str, path: tuple[str, ...], values: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Term(op, path, values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "detail", "position"),
    [
        ("", "empty filter", 0),
        ("(eqq,name,a)", "unknown operator 'eqq' at position 1", 1),
        ("(EQ,name,a)", "unknown operator 'EQ' at position 1", 1),
        ("(,name,a)", "expected an operator at position 1", 1),
        ("()", "expected an operator at position 1", 1),
        ("(eq", "unterminated term: expected ',' after operator at position 3", 3),
        ("(eq)", "expected ',' after operator at position 3", 3),
        ("(eq;name,a)", "expected ',' after operator at position 3", 3),
        ("(eq,name)", "expected ',' after attribute at position 8", 8),
        ("(in,name)", "expected ',' after attribute at position 8", 8),
        ("(eq,name", "unterminated term: expected ',' after attribute at position 8", 8),
        ("(eq,,a)", "expected an attribute at position 4", 4),
        ("(eq,", "expected an attribute at position 4", 4),
        ("(eq,/name,a)", "empty attribute name in path at position 4", 4),
        ("(eq,a//b,c)", "empty attribute name in path at position 6", 6),
        ("(eq,a/,c)", "empty attribute name in path at position 6", 6),
        ("(eq,'name',a)", 'unexpected "\'" in attribute at position 4', 4),
        ("(eq,na(me,a)", "unexpected '(' in attribute at position 6", 6),
        ("(eq,name,a,b)", "operator 'eq' takes exactly one value, got 2", 11),
        ("(gte,name,a,b,c)", "operator 'gte' takes exactly one value, got 3", 12),
        ("(eq,name,)", "empty value at position 9", 9),
        ("(in,name,a,)", "empty value at position 11", 11),
        ("(in,name,,a)", "empty value at position 9", 9),
        ("(eq,name,", "expected a value at position 9", 9),
        ("(eq,name,a", "unterminated term: expected ')' at position 10", 10),
        ("(eq,name,'a'", "unterminated term: expected ')' at position 12", 12),
        ("(eq,name,'abc", "unterminated quoted value starting at position 9", 9),
        ("(eq,name,'it''s)", "unterminated quoted value starting at position 9", 9),
        ("(eq,name,'a'b)", "expected ',' or ')' after a quoted value at position 12", 12),
        ("(eq,name,'a' )", "unexpected whitespace at position 12", 12),
        ("(eq,name,a'b)", "unexpected quote inside an unquoted value at position 10", 10),
        ("(eq,name,a/b)", "unquoted '/' in value at position 10", 10),
        ("(eq,name,a;b)", "unquoted ';' in value at position 10", 10),
        ("(eq,name,my cluster)", "unexpected whitespace at position 11", 11),
        (" (eq,name,a)", "unexpected whitespace at position 0", 0),
        ("(eq,name,a) ", "unexpected whitespace at position 11", 11),
        ("(eq,name,a); (eq,name,b)", "unexpected whitespace at position 12", 12),
        ("( eq,name,a)", "unexpected whitespace at position 1", 1),
        ("((eq,name,a)", "unexpected '(' where an operator should be at position 1", 1),
        ("(eq, name,a)", "unexpected whitespace at position 4", 4),
        ("(eq ,name,a)", "unexpected whitespace at position 3", 3),
        ("(eq,name ,a)", "unexpected whitespace at position 8", 8),
        ("(eq,name,\ta)", "unexpected whitespace at position 9", 9),
        ("(eq,name,a);", "expected '(' to start a term at position 12", 12),
        (";(eq,name,a)", "unexpected ';' where a term should start", 0),
        ("eq,name,a", "unexpected 'e' where a term should start", 0),
        ("(eq,name,a)(eq,name,b)", "expected ';' between terms at position 11", 11),
        ("(eq,name,a)x", "unexpected 'x' after a term, expected ';' at position 11", 11),
        ("(eq,name,a)]", "unexpected ']' after a term", 11),
        ("(eq,name,a);;(eq,name,b)", "unexpected ';' where a term should start", 12),
        ("[(eq,name,a)]", "unexpected '[' at position 0", 0),
        ("(eq,name,a)|(eq,name,b)", "unexpected '|' at position 11", 11),
    ],
)
def test_syntax_errors(text: str, detail: str, position: int) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_filter(text)
    error = caught.value
    assert error.detail.startswith(detail)
    assert error.position == position
    assert error.parameter == "filter"
    assert error.attributes["position"] == str(position)
    if text:
        assert f"at position {position}" in error.detail


@pytest.mark.parametrize(
    ("text", "detail", "position"),
    [
        ("[", "expected '(' to start a term at position 1", 1),
        ("[]", "unexpected ']' where a term should start", 1),
        ("[(eq,name,a)", "expected ']' to close the opening '[' at position 12", 12),
        ("[(eq,name,a)]x", "unexpected text after ']' at position 13", 13),
        ("[(eq,name,a)](eq,name,b)", "unexpected text after ']' at position 13", 13),
        ("(eq,name,a)]", "unexpected ']' after a term", 11),
        ("(eq,name,a)|", "expected '(' to start a term at position 12", 12),
        ("|(eq,name,a)", "unexpected '|' where a term should start", 0),
        ("(eq,name,a)||(eq,name,b)", "unexpected '|' where a term should start", 12),
        ("[[(eq,name,a)]]", "unexpected '[' where a term should start", 1),
        ("(eq,name,a)|[(eq,name,b)]", "unexpected '[' where a term should start", 12),
    ],
)
def test_alternative_syntax_errors(text: str, detail: str, position: int) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_filter(text, allow_alternatives=True)
    assert caught.value.detail.startswith(detail)
    assert caught.value.position == position


def test_parameter_name_is_reported() -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_filter("(eq,name)", parameter="subscription filter")
    assert caught.value.parameter == "subscription filter"


@pytest.mark.parametrize(
    "text",
    [
        "(eq,name,a)",
        "(eq,extensions/zone,a)",
        "(eq,extensions/a/b/c,a)",
        "(in,tags,a,b)",
        "(eq,tags/anything,a)",
        "(eq,objectType,ResourceInfo)",
    ],
)
def test_schema_accepts_known_paths(text: str) -> None:
    parse_filter(text, schema=SCHEMA)


@pytest.mark.parametrize(
    ("text", "detail", "position"),
    [
        ("(eq,nmae,a)", "unknown attribute 'nmae' at position 4", 4),
        ("(eq,name,a);(eq,colour,b)", "unknown attribute 'colour' at position 16", 16),
        ("(eq,name/first,a)", "attribute 'name' has no sub-attribute 'first' at position 9", 9),
    ],
)
def test_schema_rejects_unknown_paths(text: str, detail: str, position: int) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_filter(text, schema=SCHEMA)
    assert caught.value.detail == detail
    assert caught.value.position == position


def test_schema_errors_are_reported_in_text_order() -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_filter("(eq,nope,a);(eq,name", schema=SCHEMA)
    assert caught.value.detail == "unknown attribute 'nope' at position 4"


def test_schema_checks_every_alternative() -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_filter("[(eq,name,a)|(eq,nope,b)]", schema=SCHEMA, allow_alternatives=True)
    assert caught.value.detail == "unknown attribute 'nope' at position 17"
