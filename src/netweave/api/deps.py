"""Request dependencies as ``Annotated`` aliases, so handler signatures read as contracts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from netweave.errors import InvalidQueryError
from netweave.inventory.service import FieldSelectionParams, InventoryService, ListQuery

__all__ = ["FieldsDep", "ListQueryDep", "ServiceDep"]


def _service(request: Request) -> InventoryService:
    service: InventoryService = request.app.state.inventory
    return service


def _flag(name: str, value: str | None) -> bool:
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


_FIELDS_DOC = (
    "Comma-separated attribute paths (`/` for nesting) to include, e.g. `name,extensions/zone`."
)
_EXCLUDE_DOC = "Comma-separated attribute paths to leave out; wins over `fields`."
_ALL_DOC = "Flag: include every attribute (complex ones too)."
_DEFAULT_DOC = "Flag: leave out the complex (object and array) attributes."


def _fields(
    fields: Annotated[str | None, Query(description=_FIELDS_DOC)] = None,
    exclude_fields: Annotated[str | None, Query(description=_EXCLUDE_DOC)] = None,
    all_fields: Annotated[str | None, Query(description=_ALL_DOC)] = None,
    exclude_default: Annotated[str | None, Query(description=_DEFAULT_DOC)] = None,
) -> FieldSelectionParams:
    return FieldSelectionParams(
        fields=fields,
        exclude_fields=exclude_fields,
        all_fields=_flag("all_fields", all_fields),
        exclude_default=_flag("exclude_default", exclude_default),
    )


def _list_query(
    selection: Annotated[FieldSelectionParams, Depends(_fields)],
    filter_: Annotated[
        str | None,
        Query(
            alias="filter",
            description="SOL013 filter, e.g. `(eq,name,'my pool');(in,extensions/country,ES,US)`.",
        ),
    ] = None,
    nextpage_opaque_marker: Annotated[
        str | None, Query(description="Paging marker from the previous page's `Link` header.")
    ] = None,
) -> ListQuery:
    return ListQuery(
        filter=filter_,
        fields=selection.fields,
        exclude_fields=selection.exclude_fields,
        all_fields=selection.all_fields,
        exclude_default=selection.exclude_default,
        marker=nextpage_opaque_marker,
    )


ServiceDep = Annotated[InventoryService, Depends(_service)]
FieldsDep = Annotated[FieldSelectionParams, Depends(_fields)]
ListQueryDep = Annotated[ListQuery, Depends(_list_query)]
