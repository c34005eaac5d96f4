"""Attribute selection: the ``fields``, ``exclude_fields``, ``all_fields`` and
``exclude_default`` query parameters (ETSI GS NFV-SOL013 style).

``fields`` and ``exclude_fields`` are comma lists of ``/``-separated attribute paths, each
checked against the object kind's schema; an empty entry is an error.

Semantics
---------
* No parameter: the whole object.
* ``fields=a,b/c``: only those attributes. A nested path keeps only that sub-key and
  preserves the nesting (``extensions/zone`` gives ``{"extensions": {"zone": ...}}``);
  through an array of objects it keeps that sub-key in every element.
* ``exclude_fields``: removes those paths (through arrays, from every element); it wins over
  ``fields``.
* ``exclude_default``: drops the complex attributes (shape OBJECT or ARRAY) and keeps the
  scalars; the attributes named in ``fields`` are added back (only the named sub-paths).
* ``all_fields``: everything; it overrides ``exclude_default`` and ``fields``, while
  ``exclude_fields`` still applies.
* A selected path that does not exist in an object is absent from the result. So is a
  nested selection that finds nothing: ``extensions/zone`` on an object whose
  ``extensions`` has no ``zone`` yields no ``extensions``. In an array, the elements in
  which nothing selected exists (non-objects included) are left out, and an array left
  empty is absent.
* :meth:`FieldSelection.apply` never mutates its input: it builds new dicts and lists along
  the paths it selects or removes from, and shares every other value with the input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netweave.errors import InvalidQueryError
from netweave.query.attributes import AttributeSchema, AttributeShape, check_path

__all__ = ["FieldSelection", "parse_field_selection"]

Path = tuple[str, ...]
#: a set of paths as a tree; an empty tree at a key means "the whole value"
_Tree = dict[str, "_Tree"]
_ABSENT: Any = object()


@dataclass(frozen=True, slots=True)
class FieldSelection:
    """Which attributes of an object a response carries.

    ``fields`` are the selected paths; with ``only_fields`` nothing else is kept, otherwise
    every attribute is kept except the ``dropped`` top-level ones that ``fields`` does not
    name. The ``exclude`` paths are then removed.
    """

    fields: tuple[Path, ...]
    only_fields: bool
    dropped: frozenset[str]
    exclude: tuple[Path, ...]
    _include_tree: _Tree = field(init=False, repr=False, compare=False)
    _exclude_tree: _Tree = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include_tree", _tree(self.fields))
        object.__setattr__(self, "_exclude_tree", _tree(self.exclude))

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict with the selected attributes of ``obj``."""
        include, exclude = self._include_tree, self._exclude_tree
        result: dict[str, Any] = {}
        for key, value in obj.items():
            selected = include.get(key)
            if selected is None:
                if self.only_fields or key in self.dropped:
                    continue
            elif selected:
                value = _project(value, selected)
                if value is _ABSENT:
                    continue
            removed = exclude.get(key)
            if removed is not None:
                if not removed:
                    continue
                value = _remove(value, removed)
            result[key] = value
        return result


def parse_field_selection(
    *,
    fields: str | None,
    exclude_fields: str | None,
    all_fields: bool,
    exclude_default: bool,
    schema: AttributeSchema,
) -> FieldSelection | None:
    """The selection the parameters ask for, or None when it is the whole object unchanged."""
    selected = _parse_paths(fields, "fields", schema) if fields is not None else ()
    excluded = (
        _parse_paths(exclude_fields, "exclude_fields", schema) if exclude_fields is not None else ()
    )
    dropped: frozenset[str] = frozenset()
    if all_fields:
        selected = ()
    elif exclude_default:
        dropped = frozenset(
            name for name, shape in schema.items() if shape != AttributeShape.SCALAR
        )
    only_fields = bool(selected) and not exclude_default
    if not only_fields and not dropped and not excluded:
        return None
    return FieldSelection(selected, only_fields, dropped, excluded)


def _parse_paths(text: str, parameter: str, schema: AttributeSchema) -> tuple[Path, ...]:
    paths: list[Path] = []
    position = 0
    for entry in text.split(","):
        if not entry:
            raise InvalidQueryError(
                f"empty entry in the attribute list at position {position}",
                parameter=parameter,
                position=position,
            )
        path = tuple(entry.split("/"))
        check_path(path, schema, parameter=parameter, position=position)
        paths.append(path)
        position += len(entry) + 1
    return tuple(paths)


def _tree(paths: tuple[Path, ...]) -> _Tree:
    root: _Tree = {}
    for path in paths:
        node = root
        for index, segment in enumerate(path):
            child = node.get(segment)
            if child is not None and not child:
                break  # the whole value is already selected
            if index == len(path) - 1:
                node[segment] = {}
            else:
                node = node.setdefault(segment, {})
    return root


def _project(value: Any, tree: _Tree) -> Any:
    """The parts of ``value`` that ``tree`` selects, or ``_ABSENT``."""
    if isinstance(value, Mapping):
        result: dict[Any, Any] = {}
        for key, item in value.items():
            selected = tree.get(key)
            if selected is None:
                continue
            if selected:
                item = _project(item, selected)
                if item is _ABSENT:
                    continue
            result[key] = item
        return result if result else _ABSENT
    if isinstance(value, list):
        items = [p for p in (_project(item, tree) for item in value) if p is not _ABSENT]
        return items if items else _ABSENT
    return _ABSENT


def _remove(value: Any, tree: _Tree) -> Any:
    """A copy of ``value`` without the parts that ``tree`` selects."""
    if isinstance(value, Mapping):
        result: dict[Any, Any] = {}
        for key, item in value.items():
            removed = tree.get(key)
            if removed is None:
                result[key] = item
            elif removed:
                result[key] = _remove(item, removed)
        return result
    if isinstance(value, list):
        return [_remove(item, tree) for item in value]
    return value
