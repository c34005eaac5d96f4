"""The inventory service layer: queries over the view, shared by every API surface.

The routers differ only in envelope (bare arrays on the standard surface) and allowed
methods; everything else (filter and field-selection parsing, keyset paging with
signed markers, the rendered-page cache, 404s and 503s) lives here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import orjson

from netweave.errors import BackendUnavailableError, NotFoundError
from netweave.inventory.view import Entry, InventoryView
from netweave.models.inventory import MODEL_OF_KIND, JsonObject, ObjectKind, OCloudInfo
from netweave.observability.metrics import Metrics
from netweave.query import AttributeSchema, PageMarkers, schema_of
from netweave.query.listing import (
    FieldSelectionParams,
    ListQuery,
    PageBody,
    RenderedPage,
    finish_page,
    render_one,
    render_page,
    selection_for,
)
from netweave.security.visibility import TenantVisibility

__all__ = ["FieldSelectionParams", "InventoryService", "ListQuery", "RenderedPage"]

_NOUN = {
    ObjectKind.RESOURCE_TYPE: "resource type",
    ObjectKind.RESOURCE_POOL: "resource pool",
    ObjectKind.RESOURCE: "resource",
    ObjectKind.DEPLOYMENT_MANAGER: "deployment manager",
    ObjectKind.LOCATION: "location",
    ObjectKind.OCLOUD_SITE: "O-Cloud site",
}


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
        visibility: TenantVisibility | None = None,
    ) -> None:
        self._view = view
        self._visibility = visibility or TenantVisibility(view)
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
        self._cache: OrderedDict[tuple[object, ...], tuple[object, PageBody]] = OrderedDict()
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
        chosen = selection_for(selection, self._ocloud_schema)
        if chosen is None:
            return self._ocloud_raw
        return orjson.dumps(chosen.apply(self._ocloud_wire))

    # Lists -----------------------------------------------------------------------------

    def list(
        self,
        kind: ObjectKind,
        query: ListQuery,
        *,
        parent: tuple[ObjectKind, str] | None = None,
        tenant: str | None = None,
    ) -> RenderedPage:
        """One page of ``kind`` (under ``parent``) as a principal of ``tenant`` sees it."""
        self._require_ready()
        parent_id = None
        if parent is not None:
            parent_kind, parent_id = parent
            self._entry(parent_kind, parent_id, tenant)
        generation: object = self._view.generation(kind)
        if tenant is not None and kind is ObjectKind.RESOURCE:
            # what a tenant sees of resources changes with the pools' ownership too
            generation = (generation, self._view.generation(ObjectKind.RESOURCE_POOL))
        key = (kind, parent_id, query, tenant)
        # Pages after a marker are not cached: the marker must be verified every time.
        cached = self._cache.get(key) if query.marker is None else None
        if cached is not None and cached[0] == generation:
            self._cache.move_to_end(key)
            self._count_cache("hit")
            body = cached[1]
        else:
            self._count_cache("miss")
            body = self._render(kind, query, parent_id, tenant)
            if query.marker is None:
                self._cache[key] = (generation, body)
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return finish_page(body, markers=self._markers, scope=query.scope(kind.value, parent_id))

    def _render(
        self, kind: ObjectKind, query: ListQuery, parent_id: str | None, tenant: str | None
    ) -> PageBody:
        entries: Sequence[Entry] = self._view.entries(kind, parent=parent_id)
        if tenant is not None:
            sees = self._visibility.sees
            entries = [e for e in entries if sees(tenant, kind, e.model)]
        return render_page(
            entries,
            query,
            schema=self._schemas[kind],
            markers=self._markers,
            scope=query.scope(kind.value, parent_id),
            page_size=self._page_size,
        )

    # Single objects --------------------------------------------------------------------

    def get(
        self,
        kind: ObjectKind,
        object_id: str,
        selection: FieldSelectionParams,
        *,
        parent: tuple[ObjectKind, str] | None = None,
        tenant: str | None = None,
    ) -> bytes:
        """One object as a principal of ``tenant`` sees it: hidden ones do not exist."""
        self._require_ready()
        if parent is not None:
            self._entry(*parent, tenant)
        entry = self._entry(kind, object_id, tenant)
        if parent is not None and entry.parent_id != parent[1]:
            raise NotFoundError(
                f"{_NOUN[kind]} {object_id} is not in {_NOUN[parent[0]]} {parent[1]}"
            )
        return render_one(entry, selection, self._schemas[kind])

    def _entry(self, kind: ObjectKind, object_id: str, tenant: str | None = None) -> Entry:
        entry = self._view.get(kind, object_id)
        if entry is None or not self._visibility.sees(tenant, kind, entry.model):
            raise NotFoundError(f"{_NOUN[kind]} {object_id} does not exist")
        return entry

    # Helpers ---------------------------------------------------------------------------

    def _require_ready(self) -> None:
        if not self._view.ready:
            raise BackendUnavailableError(self._view.not_ready_reason, retry_after=5)

    def _count_cache(self, result: str) -> None:
        counter = self._cache_counters.get(result)
        if counter is not None:
            counter.inc()
