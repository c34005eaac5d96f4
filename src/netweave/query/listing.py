"""Lists and single objects as every surface answers them: filter, field selection, paging.

The inventory service and the subscription service both hand their objects here, as
:class:`Listable` items sorted by id; what comes back is the JSON of one page (the items
joined by commas, so each surface adds its own envelope) and the facts for its paging
headers.  Paging is keyset paging on the id, with signed markers bound to the query.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from netweave.query.attributes import AttributeSchema
from netweave.query.fields import FieldSelection, parse_field_selection
from netweave.query.filters import parse_filter
from netweave.query.paging import PageMarkers

__all__ = [
    "FieldSelectionParams",
    "ListQuery",
    "Listable",
    "PageBody",
    "RenderedPage",
    "finish_page",
    "list_page",
    "render_one",
    "render_page",
    "selection_for",
]


class Listable(Protocol):
    """An object as lists serve it: its id, its wire dict and that dict's JSON bytes."""

    @property
    def object_id(self) -> str: ...

    @property
    def wire(self) -> dict[str, Any]: ...

    @property
    def raw(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class FieldSelectionParams:
    """The field-selection parameters of a GET (``fields`` and friends)."""

    fields: str | None = None
    exclude_fields: str | None = None
    all_fields: bool = False
    exclude_default: bool = False


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The SOL013 query parameters of a list request, as the client sent them."""

    filter: str | None = None
    fields: str | None = None
    exclude_fields: str | None = None
    all_fields: bool = False
    exclude_default: bool = False
    marker: str | None = None

    @property
    def selection(self) -> FieldSelectionParams:
        return FieldSelectionParams(
            self.fields, self.exclude_fields, self.all_fields, self.exclude_default
        )

    def scope(self, listing: str, parent: str | None = None) -> str:
        """What a paging marker is bound to: the same listing with the same query."""
        return "\x1f".join(
            (
                listing,
                parent or "",
                self.filter or "",
                self.fields or "",
                self.exclude_fields or "",
                "1" if self.all_fields else "0",
                "1" if self.exclude_default else "0",
            )
        )


@dataclass(frozen=True, slots=True)
class PageBody:
    """One page without its (time-stamped) marker: what a page cache may keep."""

    items: bytes
    count: int
    total: int
    last_id: str | None  # set when more items follow this page


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One page of a list: the items' JSON joined by commas, plus paging facts."""

    items: bytes
    count: int
    total: int
    next_marker: str | None


def selection_for(params: FieldSelectionParams, schema: AttributeSchema) -> FieldSelection | None:
    return parse_field_selection(
        fields=params.fields,
        exclude_fields=params.exclude_fields,
        all_fields=params.all_fields,
        exclude_default=params.exclude_default,
        schema=schema,
    )


def render_page(
    entries: Sequence[Listable],
    query: ListQuery,
    *,
    schema: AttributeSchema,
    markers: PageMarkers,
    scope: str,
    page_size: int,
) -> PageBody:
    """Filter ``entries`` (sorted by id), start after the marker, select fields, join."""
    selection = selection_for(query.selection, schema)
    if query.filter is not None:
        flt = parse_filter(query.filter, schema=schema)
        entries = [entry for entry in entries if flt.matches(entry.wire)]
    start = 0
    if query.marker is not None:
        after = markers.verify(query.marker, scope=scope)
        start = bisect.bisect_right(entries, after, key=_object_id)
    chunk = entries[start : start + page_size]
    more = start + page_size < len(entries)
    if selection is None:
        body = b",".join(entry.raw for entry in chunk)
    else:
        body = b",".join(orjson.dumps(selection.apply(entry.wire)) for entry in chunk)
    last_id = chunk[-1].object_id if more and chunk else None
    return PageBody(items=body, count=len(chunk), total=len(entries), last_id=last_id)


def finish_page(body: PageBody, *, markers: PageMarkers, scope: str) -> RenderedPage:
    """The page with a fresh marker for the next one, if more follow."""
    marker = markers.issue(scope=scope, after=body.last_id) if body.last_id is not None else None
    return RenderedPage(body.items, body.count, body.total, marker)


def list_page(
    entries: Sequence[Listable],
    query: ListQuery,
    *,
    schema: AttributeSchema,
    markers: PageMarkers,
    scope: str,
    page_size: int,
) -> RenderedPage:
    """A whole page of a listing that is rendered afresh each time (no page cache)."""
    body = render_page(
        entries, query, schema=schema, markers=markers, scope=scope, page_size=page_size
    )
    return finish_page(body, markers=markers, scope=scope)


def render_one(entry: Listable, params: FieldSelectionParams, schema: AttributeSchema) -> bytes:
    selection = selection_for(params, schema)
    if selection is None:
        return entry.raw
    return orjson.dumps(selection.apply(entry.wire))


def _object_id(entry: Listable) -> str:
    return entry.object_id
