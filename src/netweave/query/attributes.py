"""Attribute schemas: which wire attributes an object kind has, and what shape each one is.

Filters and field selectors name attributes by ``/``-separated paths (``extensions/zone``).
A path is checked against the :data:`AttributeSchema` of the object kind:

* its first segment must be a top-level wire attribute of the kind;
* a :attr:`AttributeShape.SCALAR` attribute has no sub-attributes;
* an :attr:`AttributeShape.OBJECT` attribute (a JSON object with free-form keys) accepts any
  sub-path;
* an :attr:`AttributeShape.ARRAY` attribute accepts any sub-path, which descends into its
  elements.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic

from netweave.errors import InvalidQueryError

__all__ = ["AttributeSchema", "AttributeShape", "check_path", "schema_of"]


class AttributeShape(StrEnum):
    """The JSON shape of a top-level attribute."""

    SCALAR = "scalar"
    OBJECT = "object"
    ARRAY = "array"


#: top-level wire attribute names of one object kind -> their shape
AttributeSchema = Mapping[str, AttributeShape]

_UNION_ORIGINS: frozenset[Any] = frozenset({Union, types.UnionType})


def schema_of(
    model: type[pydantic.BaseModel], *, extra: Mapping[str, AttributeShape] | None = None
) -> dict[str, AttributeShape]:
    """The attribute schema of ``model``, keyed by wire (alias) names.

    ``dict``/mapping and nested-model fields are OBJECT, list/tuple/set fields are ARRAY,
    everything else is SCALAR; ``X | None`` has the shape of ``X``. A field typed ``Any`` is
    OBJECT, as its value may be a JSON object. ``extra`` adds pseudo-attributes such as
    ``objectType``.
    """
    schema: dict[str, AttributeShape] = {}
    for name, info in model.model_fields.items():
        wire = info.serialization_alias or info.alias or name
        schema[wire] = _shape_of(info.annotation)
    if extra:
        schema.update(extra)
    return schema


def _shape_of(annotation: Any) -> AttributeShape:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _shape_of(get_args(annotation)[0])
    if origin in _UNION_ORIGINS:
        shapes = {_shape_of(arg) for arg in get_args(annotation) if arg is not type(None)}
        if len(shapes) == 1:
            return shapes.pop()
        return AttributeShape.ARRAY if AttributeShape.ARRAY in shapes else AttributeShape.OBJECT
    if annotation is Any:
        return AttributeShape.OBJECT
    base = origin if origin is not None else annotation
    if not isinstance(base, type) or issubclass(base, (str, bytes)):
        return AttributeShape.SCALAR
    if issubclass(base, (Mapping, pydantic.BaseModel)):
        return AttributeShape.OBJECT
    if issubclass(base, (Sequence, AbstractSet)):
        return AttributeShape.ARRAY
    return AttributeShape.SCALAR


def check_path(
    path: tuple[str, ...],
    schema: AttributeSchema,
    *,
    parameter: str,
    position: int | None = None,
) -> None:
    """Raise :class:`InvalidQueryError` unless ``path`` names an attribute of ``schema``.

    ``position`` is where the path starts in the query parameter; the reported position is
    the one of the offending segment.
    """
    if not path:
        raise _error("empty attribute path", parameter, position)
    offset = position
    for segment in path:
        if not segment:
            raise _error("empty attribute name in path", parameter, offset)
        if offset is not None:
            offset += len(segment) + 1
    shape = schema.get(path[0])
    if shape is None:
        raise _error(f"unknown attribute '{path[0]}'", parameter, position)
    if shape is AttributeShape.SCALAR and len(path) > 1:
        sub_position = None if position is None else position + len(path[0]) + 1
        raise _error(
            f"attribute '{path[0]}' has no sub-attribute '{path[1]}'", parameter, sub_position
        )


def _error(detail: str, parameter: str, position: int | None) -> InvalidQueryError:
    if position is not None:
        detail = f"{detail} at position {position}"
    return InvalidQueryError(detail, parameter=parameter, position=position)
