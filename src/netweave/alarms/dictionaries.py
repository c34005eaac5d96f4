"""Alarm dictionaries and probable causes as the API serves them (lists with the SOL013
query parameters, single objects with field selection).

Dictionaries describe resource types, which every principal may see (they are the
O-Cloud's catalogue, like the types themselves).  ``resourceTypes/{id}/alarmDictionary``
is 404 for a resource type the inventory does not have, or one without a dictionary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from netweave.alarms.catalog import AlarmCatalog
from netweave.errors import BackendUnavailableError, NotFoundError
from netweave.models.alarms import AlarmDictionary, ProbableCause
from netweave.models.common import WireModel
from netweave.query import AttributeSchema, PageMarkers, schema_of
from netweave.query.listing import (
    FieldSelectionParams,
    ListQuery,
    RenderedPage,
    list_page,
    render_one,
)

__all__ = ["DictionaryService"]

_DICTIONARY_SCHEMA = schema_of(AlarmDictionary)
_CAUSE_SCHEMA = schema_of(ProbableCause)


@dataclass(frozen=True, slots=True)
class _Listed:
    object_id: str
    wire: dict[str, Any]
    raw: bytes

    @classmethod
    def of(cls, object_id: str, model: WireModel) -> _Listed:
        wire = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        return cls(object_id, wire, orjson.dumps(wire))


class DictionaryService:
    def __init__(
        self,
        catalog: AlarmCatalog,
        *,
        markers: PageMarkers,
        page_size: int,
        has_resource_type: Callable[[str], bool | None] = lambda _id: True,
    ) -> None:
        """``has_resource_type(id)`` says whether the inventory has the type (None: the
        inventory is not synchronised yet, which is a 503)."""
        self._catalog = catalog
        self._markers = markers
        self._page_size = page_size
        self._has_resource_type = has_resource_type

    def list_dictionaries(self, query: ListQuery) -> RenderedPage:
        entries = [_Listed.of(d.alarm_dictionary_id, d) for d in self._catalog.dictionaries()]
        return self._page(entries, query, "alarmDictionaries", _DICTIONARY_SCHEMA)

    def get_dictionary(self, dictionary_id: str, selection: FieldSelectionParams) -> bytes:
        for dictionary in self._catalog.dictionaries():
            if dictionary.alarm_dictionary_id == dictionary_id:
                listed = _Listed.of(dictionary_id, dictionary)
                return render_one(listed, selection, _DICTIONARY_SCHEMA)
        raise NotFoundError(f"alarm dictionary {dictionary_id} does not exist")

    def dictionary_of_type(self, resource_type_id: str, selection: FieldSelectionParams) -> bytes:
        known = self._has_resource_type(resource_type_id)
        if known is None:
            raise BackendUnavailableError("the inventory has not synchronised yet", retry_after=5)
        if not known:
            raise NotFoundError(f"resource type {resource_type_id} does not exist")
        dictionary = self._catalog.dictionary_of_type(resource_type_id)
        if dictionary is None:
            raise NotFoundError(f"resource type {resource_type_id} has no alarm dictionary")
        listed = _Listed.of(dictionary.alarm_dictionary_id, dictionary)
        return render_one(listed, selection, _DICTIONARY_SCHEMA)

    def list_probable_causes(self, query: ListQuery) -> RenderedPage:
        entries = [_Listed.of(c.probable_cause_id, c) for c in self._catalog.probable_causes()]
        return self._page(entries, query, "probableCauses", _CAUSE_SCHEMA)

    def get_probable_cause(self, cause_id: str, selection: FieldSelectionParams) -> bytes:
        for cause in self._catalog.probable_causes():
            if cause.probable_cause_id == cause_id:
                return render_one(_Listed.of(cause_id, cause), selection, _CAUSE_SCHEMA)
        raise NotFoundError(f"probable cause {cause_id} does not exist")

    def _page(
        self, entries: list[_Listed], query: ListQuery, listing: str, schema: AttributeSchema
    ) -> RenderedPage:
        scope = query.scope(listing)
        return list_page(
            entries,
            query,
            schema=schema,
            markers=self._markers,
            scope=scope,
            page_size=self._page_size,
        )
