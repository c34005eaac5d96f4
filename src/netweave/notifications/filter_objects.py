"""The object form of a subscription filter, accepted on netweave's own surface.

SMO developers tend to write ``{"resourcePoolId": "abc"}`` where SOL013 says
``(eq,resourcePoolId,abc)``.  ``/o2ims/v1/subscriptions`` accepts both; the object form is
translated here, once, into the SOL013 text, which is what is stored, shown and matched
(the object itself is not kept, so every surface sees one filter language):

* each key is an attribute path, segments separated by ``/`` (``extensions/zone``);
* a string, number or boolean value is ``(eq,path,value)``;
* a non-empty list of those is ``(in,path,v1,v2,...)``: any of them;
* several keys are ANDed (``;``), in the order the client wrote them.

Values are rendered the way :mod:`netweave.query.filters` reads them: numbers in their
JSON form, booleans as ``true``/``false``, and a value containing ``,`` ``)`` ``/`` ``;``
``'`` or whitespace (or an empty one) single-quoted with ``''`` for a quote.  Attribute
names cannot be quoted in SOL013, so a key whose segments hold one of ``,()/;'[]|`` or
whitespace cannot be expressed and is refused.  Anything else (nested objects, null, an
empty list or object, a non-finite number) is a 400 naming the key: the caller learns
which part of its filter was wrong.  Whether the attributes exist is checked afterwards,
like for any filter string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from netweave.errors import InvalidRequestError
from netweave.query.filters import Filter, Operator, Term

__all__ = ["filter_from_object", "filter_text"]

#: an attribute path segment SOL013 can carry (the filter grammar's name token)
_SEGMENT = re.compile(r"[^,()/;'\[\]|\s]+")


def filter_text(value: str | Mapping[str, Any] | None) -> str | None:
    """The SOL013 text of a filter given as text (unchanged), an object, or not at all."""
    if value is None or isinstance(value, str):
        return value
    return filter_from_object(value)


def filter_from_object(obj: Mapping[str, Any]) -> str:
    """The SOL013 filter ANDing one term per key of ``obj`` (see the module docstring).

    Raises :class:`InvalidRequestError` (``additionalAttributes``: ``parameter=filter``
    and the offending ``key``) for a shape that has no SOL013 equivalent.
    """
    if not obj:
        raise InvalidRequestError(
            "filter: an object filter needs at least one attribute; "
            "leave the filter out to be notified of every change",
            attributes={"parameter": "filter"},
        )
    terms = tuple(_term(key, value) for key, value in obj.items())
    return str(Filter((terms,)))


def _term(key: object, value: object) -> Term:
    path = _path(key)
    if isinstance(value, list):
        if not value:
            _refuse(key, "an empty list matches nothing; give at least one value")
        return Term(Operator.IN, path, tuple(_scalar(key, item) for item in value))
    return Term(Operator.EQ, path, (_scalar(key, value),))


def _path(key: object) -> tuple[str, ...]:
    if not isinstance(key, str) or not key:
        _refuse(key, "the attribute name is empty")
    segments = tuple(key.split("/"))
    for segment in segments:
        if not segment:
            _refuse(key, "the attribute path has an empty segment")
        if not _SEGMENT.fullmatch(segment):
            _refuse(
                key,
                "an attribute name cannot hold ',', '(', ')', ';', quotes, brackets, '|' "
                "or whitespace",
            )
    return segments


def _scalar(key: object, value: object) -> str:
    """One value as the filter language's text (quoting is left to :class:`Term`)."""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than str() converts
            _refuse(key, "the number has too many digits")
    if isinstance(value, float):
        if not math.isfinite(value):
            _refuse(key, f"{value} is not a JSON number")
        return repr(value)
    if isinstance(value, str):
        return value
    what = "null" if value is None else "an object" if isinstance(value, dict) else "a list"
    _refuse(key, f"a value must be a string, number or boolean (or a list of them), not {what}")


def _refuse(key: object, why: str) -> NoReturn:
    raise InvalidRequestError(
        f"filter attribute {key!r}: {why}",
        attributes={"parameter": "filter", "key": str(key)},
    )
