"""The inventory service layer: queries over the view, shared by every API surface.

The routers differ only in envelope (bare arrays on the standard surface) and allowed
methods; everything else (filter and field-selection parsing, keyset paging with
signed markers, the rendered-page cache, 404s and 503s) lives here.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from netweave.errors import BackendUnavailableError, NotFoundError
from netweave.inventory.view import Entry, InventoryView
from netweave.models.inventory import MODEL_OF_KIND, JsonObject, ObjectKind, OCloudInfo
from netweave.observability.metrics import Metrics
from netweave.query import (
    AttributeSchema,
    FieldSelection,
    Filter,
    PageMarkers,
    parse_field_selection,
    parse_filter,
    schema_of,
)

__all__ = ["InventoryService", "ListQuery", "RenderedPage"]

_NOUN = {
    ObjectKind.RESOURCE_TYPE: "resource type",
    ObjectKind.RESOURCE_POOL: "resource pool",
    ObjectKind.RESOURCE: "resource",
    ObjectKind.DEPLOYMENT_MANAGER: "deployment manager",
    ObjectKind.LOCATION: "location",
    ObjectKind.OCLOUD_SITE: "O-Cloud site",
}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The SOL013 query parameters of a list request, as the client sent them."""

    filter: str | None = None
    fields: str | None = None
    exclude_fields: str | None = None
    all_fields: bool = False
    exclude_default: bool = False
    marker: str | None = None

    def scope(self, kind: ObjectKind, parent: str | None) -> str:
        """What a paging marker is bound to: the same listing with the same query."""
        return "\x1f".join(
            (
                kind.value,
                parent or "",
                self.filter or "",
                self.fields or "",
                self.exclude_fields or "",
                "1" if self.all_fields else "0",
                "1" if self.exclude_default else "0",
            )
        )


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One page of a list: the items' JSON joined by commas, plus paging facts."""

    items: bytes
    count: int
    total: int
    next_marker: str | None


@dataclass(frozen=True, slots=True)
class _PageBody:
    """What the page cache keeps: everything but the (time-stamped) paging marker."""

    items: bytes
    count: int
    total: int
    last_id: str | None  # set when more items follow this page


class InventoryService:
    def __init__(
        self,
        view: InventoryView,
        *,
        ocloud: OCloudInfo,
        markers: PageMarkers,
        page_size: int,
        metrics: Metrics | None = None,
        cache_size: int = 512,
    ) -> None:
        self._view = view
        self._ocloud = ocloud
        self._ocloud_wire: JsonObject = ocloud.model_dump(mode="json", by_alias=True)
        self._ocloud_raw = orjson.dumps(self._ocloud_wire)
        self._markers = markers
        self._page_size = page_size
        self._metrics = metrics
        self._schemas: dict[ObjectKind, AttributeSchema] = {
            kind: schema_of(model) for kind, model in MODEL_OF_KIND.items()
        }
        self._ocloud_schema = schema_of(OCloudInfo)
        self._cache: OrderedDict[tuple[object, ...], tuple[int, _PageBody]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_counters = (
            {result: metrics.cache_lookups.labels(result) for result in ("hit", "miss")}
            if metrics is not None
            else {}
        )

    @property
    def ocloud(self) -> OCloudInfo:
        return self._ocloud

    def get_ocloud(self, selection: FieldSelectionParams) -> bytes:
        chosen = self._selection(selection, self._ocloud_schema)
        if chosen is None:
            return self._ocloud_raw
        return orjson.dumps(chosen.apply(self._ocloud_wire))

    # Lists -----------------------------------------------------------------------------

    def list(
        self, kind: ObjectKind, query: ListQuery, *, parent: tuple[ObjectKind, str] | None = None
    ) -> RenderedPage:
        self._require_ready()
        parent_id = None
        if parent is not None:
            parent_kind, parent_id = parent
            self._entry(parent_kind, parent_id)
        generation = self._view.generation(kind)
        key = (kind, parent_id, query)
        # Pages after a marker are not cached: the marker must be verified every time.
        cached = self._cache.get(key) if query.marker is None else None
        if cached is not None and cached[0] == generation:
            self._cache.move_to_end(key)
            self._count_cache("hit")
            body = cached[1]
        else:
            self._count_cache("miss")
            body = self._render(kind, query, parent_id)
            if query.marker is None:
                self._cache[key] = (generation, body)
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        next_marker = (
            self._markers.issue(scope=query.scope(kind, parent_id), after=body.last_id)
            if body.last_id is not None
            else None
        )
        return RenderedPage(body.items, body.count, body.total, next_marker)

    def _render(self, kind: ObjectKind, query: ListQuery, parent_id: str | None) -> _PageBody:
        schema = self._schemas[kind]
        flt: Filter | None = (
            parse_filter(query.filter, schema=schema) if query.filter is not None else None
        )
        selection = self._selection(
            FieldSelectionParams(
                query.fields, query.exclude_fields, query.all_fields, query.exclude_default
            ),
            schema,
        )
        entries = self._view.entries(kind, parent=parent_id)
        if flt is not None:
            entries = [entry for entry in entries if flt.matches(entry.wire)]
        start = 0
        if query.marker is not None:
            after = self._markers.verify(query.marker, scope=query.scope(kind, parent_id))
            start = bisect.bisect_right(entries, after, key=_entry_id)
        chunk = entries[start : start + self._page_size]
        more = start + self._page_size < len(entries)
        if selection is None:
            body = b",".join(entry.raw for entry in chunk)
        else:
            body = b",".join(orjson.dumps(selection.apply(entry.wire)) for entry in chunk)
        last_id = chunk[-1].object_id if more and chunk else None
        return _PageBody(items=body, count=len(chunk), total=len(entries), last_id=last_id)

    # Single objects --------------------------------------------------------------------

    def get(
        self,
        kind: ObjectKind,
        object_id: str,
        selection: FieldSelectionParams,
        *,
        parent: tuple[ObjectKind, str] | None = None,
    ) -> bytes:
        self._require_ready()
        if parent is not None:
            self._entry(*parent)
        entry = self._entry(kind, object_id)
        if parent is not None and entry.parent_id != parent[1]:
            raise NotFoundError(
                f"{_NOUN[kind]} {object_id} is not in {_NOUN[parent[0]]} {parent[1]}"
            )
        chosen = self._selection(selection, self._schemas[kind])
        if chosen is None:
            return entry.raw
        return orjson.dumps(chosen.apply(entry.wire))

    def _entry(self, kind: ObjectKind, object_id: str) -> Entry:
        entry = self._view.get(kind, object_id)
        if entry is None:
            raise NotFoundError(f"{_NOUN[kind]} {object_id} does not exist")
        return entry

    # Helpers ---------------------------------------------------------------------------

    def _require_ready(self) -> None:
        if not self._view.ready:
            raise BackendUnavailableError(self._view.not_ready_reason, retry_after=5)

    @staticmethod
    def _selection(params: FieldSelectionParams, schema: AttributeSchema) -> FieldSelection | None:
        return parse_field_selection(
            fields=params.fields,
            exclude_fields=params.exclude_fields,
            all_fields=params.all_fields,
            exclude_default=params.exclude_default,
            schema=schema,
        )

    def _count_cache(self, result: str) -> None:
        counter = self._cache_counters.get(result)
        if counter is not None:
            counter.inc()


@dataclass(frozen=True, slots=True)
class FieldSelectionParams:
    """The field-selection parameters of a GET (``fields`` and friends)."""

    fields: str | None = None
    exclude_fields: str | None = None
    all_fields: bool = False
    exclude_default: bool = False


def _entry_id(entry: Entry) -> str:
    return entry.object_id
