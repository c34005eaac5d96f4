"""SOL013 query parameters, read from a plain mapping of query-string values."""

from __future__ import annotations

from collections.abc import Mapping

from netweave.errors import InvalidQueryError
from netweave.inventory.service import FieldSelectionParams, ListQuery

__all__ = ["field_params", "flag", "list_query"]


def flag(name: str, value: str | None) -> bool:
    """SOL013 flags (``all_fields``, ``exclude_default``) are set by their mere presence."""
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("", "true"):
        return True
    if lowered == "false":
        return False
    raise InvalidQueryError(
        f"{name} is a flag: give it no value, 'true' or 'false' (got {value!r})", parameter=name
    )


def field_params(query: Mapping[str, str]) -> FieldSelectionParams:
    return FieldSelectionParams(
        fields=query.get("fields"),
        exclude_fields=query.get("exclude_fields"),
        all_fields=flag("all_fields", query.get("all_fields")),
        exclude_default=flag("exclude_default", query.get("exclude_default")),
    )


def list_query(query: Mapping[str, str]) -> ListQuery:
    return ListQuery(
        filter=query.get("filter"),
        fields=query.get("fields"),
        exclude_fields=query.get("exclude_fields"),
        all_fields=flag("all_fields", query.get("all_fields")),
        exclude_default=flag("exclude_default", query.get("exclude_default")),
        marker=query.get("nextpage_opaque_marker"),
    )
