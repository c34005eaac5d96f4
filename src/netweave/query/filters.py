"""The ETSI GS NFV-SOL013 attribute filter language (the ``filter`` query parameter).

Syntax
------
A filter is one or more terms joined by ``;`` (AND)::

    (eq,name,'my cluster');(in,extensions/country,ES,US)

A term is ``(op,attr,value[,value...])``. ``op`` is one of :class:`Operator`; ``in`` and
``nin`` take one or more values, every other operator exactly one. ``attr`` is a path whose
segments are separated by ``/``. A value that contains ``,`` ``)`` ``/`` ``;`` ``'`` or
whitespace, or that is empty, must be single-quoted; inside quotes ``''`` is a literal
quote. Whitespace is not allowed anywhere outside quotes.

With ``allow_alternatives`` (subscription filters) groups of terms may be separated by ``|``
(OR) and the whole expression may be wrapped in ``[`` ``]``::

    [(eq,objectType,ResourcePoolInfo);(eq,name,x)|(eq,objectType,ResourceInfo)]

Every syntax error is an :class:`InvalidQueryError` naming the 0-based position.

Matching
--------
* The path is resolved in the JSON object segment by segment; when a segment meets a list,
  the resolution descends into every element and collects all the values found.
* If the resolved value is a list (or several values were collected), a positive operator
  (``eq gt gte lt lte cont in``) matches if ANY element matches, and a negative operator
  (``neq ncont nin``) matches if NO element matches its positive counterpart.
* A missing attribute (or an empty list) fails every positive operator and passes every
  negative one.
* Filter values are strings. Against a bool, ``eq``/``in`` compare with ``true``/``false``
  (case-insensitive) and ordering operators never match. Against a number, the filter value
  is read as a JSON-style number (an integer exactly, otherwise a float); a value that is
  not a number never matches. Strings compare as strings, ordering is lexicographic by code
  point. ``cont`` is a substring test on the string form of the value (``true``/``false``
  for bools, the decimal form for numbers). ``null`` and objects match no positive operator.
* Matching never raises on JSON-like input.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

from netweave.errors import InvalidQueryError
from netweave.query.attributes import AttributeSchema, check_path

__all__ = ["Filter", "Operator", "Term", "parse_filter"]


class Operator(StrEnum):
    """The filter operators."""

    EQ = "eq"
    NEQ = "neq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONT = "cont"
    NCONT = "ncont"
    IN = "in"
    NIN = "nin"


_MULTI_VALUED = frozenset({Operator.IN, Operator.NIN})
_NEGATIVE = frozenset({Operator.NEQ, Operator.NCONT, Operator.NIN})
_ORDERING: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.GT: operator.gt,
    Operator.GTE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LTE: operator.le,
}
_MISSING: Any = object()

Predicate = Callable[[object], bool]


@dataclass(frozen=True, slots=True)
class Term:
    """One ``(op,attr,value...)`` criterion: ``path`` is the attribute path split at ``/``
    and ``values`` are the values as the client meant them (quotes removed).

    Constructing a term with the wrong number of values for ``op`` raises ``ValueError``.
    """

    op: Operator
    path: tuple[str, ...]
    values: tuple[str, ...]
    _test: Predicate = field(init=False, repr=False, compare=False)
    _negated: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        op = Operator(self.op)
        if not self.path:
            raise ValueError("a term needs an attribute path")
        if len(self.values) != 1 and (op not in _MULTI_VALUED or not self.values):
            raise ValueError(f"operator '{op}' does not take {len(self.values)} values")
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "path", tuple(self.path))
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "_negated", op in _NEGATIVE)
        object.__setattr__(self, "_test", _predicate(op, self.values))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` satisfies this term (see the module docstring)."""
        value: Any = obj
        depth = 0
        for segment in self.path:  # fast path: a chain of dicts
            if type(value) is not dict:
                break
            value = value.get(segment, _MISSING)
            if value is _MISSING:
                return self._negated
            depth += 1
        else:
            if not isinstance(value, list | tuple):
                return self._test(value) != self._negated
        return any(map(self._test, _resolve(value, self.path[depth:]))) != self._negated

    def __str__(self) -> str:
        values = ",".join(map(_render_value, self.values))
        return f"({self.op},{'/'.join(self.path)},{values})"


@dataclass(frozen=True, slots=True)
class Filter:
    """A disjunction (``|``) of conjunctions (``;``) of terms."""

    alternatives: tuple[tuple[Term, ...], ...]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether all the terms of at least one alternative match ``obj``."""
        for terms in self.alternatives:
            for term in terms:
                if not term.matches(obj):
                    break
            else:
                return True
        return False

    def terms(self) -> Iterator[Term]:
        """Every term of every alternative."""
        for terms in self.alternatives:
            yield from terms

    def __str__(self) -> str:
        """The canonical text form; it parses back to an equal filter."""
        text = "|".join(";".join(map(str, terms)) for terms in self.alternatives)
        return f"[{text}]" if len(self.alternatives) > 1 else text


def parse_filter(
    text: str,
    *,
    schema: AttributeSchema | None = None,
    allow_alternatives: bool = False,
    parameter: str = "filter",
) -> Filter:
    """Parse ``text`` (see the module docstring); check every path against ``schema``."""
    return Filter(_Parser(text, parameter, schema, allow_alternatives).parse())


# -- matching -------------------------------------------------------------------------------


def _resolve(obj: object, path: tuple[str, ...]) -> list[object]:
    """Every value at ``path`` in ``obj``, descending into lists, with lists flattened."""
    current: list[object] = [obj]
    for segment in path:
        found: list[object] = []
        while current:
            node = current.pop()
            if isinstance(node, Mapping):
                value = node.get(segment, _MISSING)
                if value is not _MISSING:
                    found.append(value)
            elif isinstance(node, list | tuple):
                current.extend(node)
        current = found
    leaves: list[object] = []
    while current:
        node = current.pop()
        if isinstance(node, list | tuple):
            current.extend(node)
        else:
            leaves.append(node)
    return leaves


_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number(text: str) -> int | float | None:
    """``text`` as a JSON-style number, or None."""
    if _INTEGER.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than int() converts
            return float(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return None


def _number_text(value: int | float) -> str:
    try:
        return repr(value) if isinstance(value, float) else str(int(value))
    except ValueError:  # more digits than str() converts
        return ""


def _predicate(op: Operator, values: tuple[str, ...]) -> Predicate:
    """The test of one value against the positive form of ``op``."""
    if op in (Operator.CONT, Operator.NCONT):
        return _contains(values[0])
    compare = _ORDERING.get(op)
    if compare is not None:
        return _ordering(compare, values[0])
    return _equals(values)


def _equals(values: tuple[str, ...]) -> Predicate:
    strings = frozenset(values)
    numbers = tuple(n for n in map(_number, values) if n is not None)
    bools = frozenset(v.lower() == "true" for v in values if v.lower() in ("true", "false"))

    def test(value: object) -> bool:
        if isinstance(value, str):
            return value in strings
        if isinstance(value, bool):
            return value in bools
        if isinstance(value, int | float):
            return any(value == n for n in numbers)
        return False

    return test


def _ordering(compare: Callable[[Any, Any], bool], text: str) -> Predicate:
    number = _number(text)

    def test(value: object) -> bool:
        if isinstance(value, str):
            return compare(value, text)
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float):
            return number is not None and compare(value, number)
        return False

    return test


def _contains(text: str) -> Predicate:
    def test(value: object) -> bool:
        if isinstance(value, str):
            return text in value
        if isinstance(value, bool):
            return text in ("true" if value else "false")
        if isinstance(value, int | float):
            return text in _number_text(value)
        return False

    return test


# -- syntax ---------------------------------------------------------------------------------

#: an operator or an attribute path segment
_NAME = re.compile(r"[^,()/;'\[\]|\s]*")
#: an unquoted value
_BARE = re.compile(r"[^,)/;'\s]*")
_BARE_VALUE = re.compile(r"[^,)/;'\s]+")
_OPERATORS = {op.value: op for op in Operator}


def _render_value(value: str) -> str:
    if _BARE_VALUE.fullmatch(value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _span_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    match = pattern.match(text, pos)
    return match.end() if match else pos


class _Parser:
    """A recursive-descent parser over ``text``; ``pos`` is the next character."""

    def __init__(
        self,
        text: str,
        parameter: str,
        schema: AttributeSchema | None,
        allow_alternatives: bool,
    ) -> None:
        self.text = text
        self.end = len(text)
        self.parameter = parameter
        self.schema = schema
        self.allow_alternatives = allow_alternatives

    def fail(self, detail: str, position: int, hint: str = "") -> NoReturn:
        message = f"{detail} at position {position}" + (f"; {hint}" if hint else "")
        raise InvalidQueryError(message, parameter=self.parameter, position=position)

    def unexpected(self, position: int, where: str) -> NoReturn:
        char = self.text[position]
        if char.isspace():
            self.fail(
                "unexpected whitespace",
                position,
                "whitespace is only allowed inside single-quoted values",
            )
        self.fail(f"unexpected {char!r} {where}", position)

    def parse(self) -> tuple[tuple[Term, ...], ...]:
        text, end = self.text, self.end
        if not text:
            raise InvalidQueryError("empty filter", parameter=self.parameter, position=0)
        bracketed = text[0] == "["
        if bracketed and not self.allow_alternatives:
            self.fail("unexpected '['", 0, "alternatives are not supported in this filter")
        pos = 1 if bracketed else 0
        alternatives: list[tuple[Term, ...]] = []
        terms: list[Term] = []
        while True:
            pos = self.term(pos, terms)
            if pos == end:
                if bracketed:
                    self.fail("expected ']' to close the opening '['", pos)
                break
            char = text[pos]
            if char == "]" and bracketed:
                if pos + 1 != end:
                    self.fail("unexpected text after ']'", pos + 1)
                break
            if char == "|":
                if not self.allow_alternatives:
                    self.fail(
                        "unexpected '|'", pos, "alternatives are not supported in this filter"
                    )
                alternatives.append(tuple(terms))
                terms = []
            elif char != ";":
                if char == "(":
                    self.fail("expected ';' between terms", pos)
                self.unexpected(pos, "after a term, expected ';'")
            pos += 1
        alternatives.append(tuple(terms))
        return tuple(alternatives)

    def term(self, pos: int, terms: list[Term]) -> int:
        """Parse the term at ``pos`` into ``terms``; return the position after it."""
        text, end = self.text, self.end
        if pos == end:
            self.fail("expected '(' to start a term", pos)
        if text[pos] != "(":
            self.unexpected(pos, "where a term should start, expected '('")
        start = pos + 1
        pos = _span_end(_NAME, text, start)
        name = text[start:pos]
        if not name:
            if start < end and text[start] not in ",)":
                self.unexpected(start, "where an operator should be")
            self.fail("expected an operator", start)
        op = _OPERATORS.get(name)
        if op is None:
            self.fail(f"unknown operator {name!r}", start, f"expected one of {', '.join(Operator)}")
        pos = self.expect_comma(pos, "after operator")
        path_start = pos
        path, pos = self.path(pos)
        if self.schema is not None:
            check_path(path, self.schema, parameter=self.parameter, position=path_start)
        pos = self.expect_comma(pos, "after attribute")
        values: list[str] = []
        value_positions: list[int] = []
        while True:
            value_positions.append(pos)
            value, pos = self.value(pos)
            values.append(value)
            if pos == end:
                self.fail("unterminated term: expected ')'", pos)
            if text[pos] == ")":
                break
            pos += 1  # the ',' between values
        if len(values) > 1 and op not in _MULTI_VALUED:
            self.fail(
                f"operator '{op}' takes exactly one value, got {len(values)}: extra value",
                value_positions[1],
            )
        terms.append(Term(op, path, tuple(values)))
        return pos + 1

    def expect_comma(self, pos: int, where: str) -> int:
        if pos == self.end:
            self.fail(f"unterminated term: expected ',' {where}", pos)
        if self.text[pos] != ",":
            if self.text[pos].isspace():
                self.unexpected(pos, where)
            hint = "a term needs a value" if self.text[pos] == ")" else ""
            self.fail(f"expected ',' {where}", pos, hint)
        return pos + 1

    def path(self, pos: int) -> tuple[tuple[str, ...], int]:
        text, end = self.text, self.end
        segments: list[str] = []
        while True:
            segment_end = _span_end(_NAME, text, pos)
            if segment_end == pos:
                if pos < end and text[pos] not in ",)/":
                    self.unexpected(pos, "in attribute")
                if segments or (pos < end and text[pos] == "/"):
                    self.fail("empty attribute name in path", pos)
                self.fail("expected an attribute", pos)
            segments.append(text[pos:segment_end])
            pos = segment_end
            if pos < end and text[pos] == "/":
                pos += 1
                continue
            if pos < end and text[pos] not in ",)":
                self.unexpected(pos, "in attribute")
            return tuple(segments), pos

    def value(self, pos: int) -> tuple[str, int]:
        """Parse the value at ``pos``; return it and the position of the ',' or ')' after it."""
        text, end = self.text, self.end
        if pos < end and text[pos] == "'":
            return self.quoted(pos)
        value_end = _span_end(_BARE, text, pos)
        if value_end == end:
            if value_end == pos:
                self.fail("expected a value", pos)
            return text[pos:value_end], value_end
        char = text[value_end]
        if char in ",)":
            if value_end == pos:
                self.fail("empty value", pos, "write an empty value as ''")
            return text[pos:value_end], value_end
        if char == "'":
            self.fail(
                "unexpected quote inside an unquoted value",
                value_end,
                "quote the whole value and double the quotes in it",
            )
        if char.isspace():
            self.unexpected(value_end, "")
        self.fail(
            f"unquoted {char!r} in value",
            value_end,
            "values containing ',', ')', '/', ';' or spaces must be single-quoted",
        )

    def quoted(self, start: int) -> tuple[str, int]:
        text, end = self.text, self.end
        parts: list[str] = []
        pos = start + 1
        while True:
            quote = text.find("'", pos)
            if quote < 0:
                self.fail("unterminated quoted value starting", start)
            parts.append(text[pos:quote])
            if quote + 1 < end and text[quote + 1] == "'":
                parts.append("'")
                pos = quote + 2
                continue
            pos = quote + 1
            break
        if pos < end and text[pos] not in ",)":
            if text[pos].isspace():
                self.unexpected(pos, "")
            self.fail("expected ',' or ')' after a quoted value", pos)
        return "".join(parts), pos
