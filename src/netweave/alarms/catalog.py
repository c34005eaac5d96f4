"""The alarm catalogue: a backend's alarm dictionaries as O2-IMS objects, and every alarm id.

Identifiers are UUIDv5 under the O-Cloud's namespace (:func:`netweave.models.ids.stable_id`),
so every replica derives the same ones and they survive restarts:

* an alarm dictionary: of its resource type id (``alarm-dictionary:<resourceTypeId>``);
* an alarm definition: of its key (``alarm-definition:node-not-ready``) -- the same
  definition shared by several resource types has one id;
* a probable cause: of its name (``probable-cause:<name>``);
* an alarm event record: of the alarm instance's source key and its raised time
  (``alarm:<key>@<raised time>``), so a restart that re-lists an active alarm names it the
  same, while a later raise of the same key is a new record.

The dictionaries are read from the source on every call (``alarm_dictionaries()`` is the
backend's current view, cheap and in memory); resource type details (vendor, model,
version) come from the inventory view when it has the type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from netweave.adapters.alarms import AlarmDefinitionSpec, AlarmDictionarySpec, AlarmSource
from netweave.errors import BackendUnavailableError
from netweave.models import ids
from netweave.models.alarms import AlarmDefinition, AlarmDictionary, ProbableCause
from netweave.models.ids import stable_id
from netweave.models.inventory import ResourceType
from netweave.observability.logging import get_logger

__all__ = [
    "SCHEMA_VERSION",
    "AlarmCatalog",
    "alarm_definition_id",
    "alarm_dictionary_id",
    "alarm_record_id",
    "probable_cause_id",
]

#: ``alarmDictionarySchemaVersion`` of every dictionary netweave publishes
SCHEMA_VERSION = "1.0"

_log = get_logger("netweave.alarms.catalog")

ResourceTypeLookup = Callable[[str], ResourceType | None]


def alarm_dictionary_id(ocloud_id: str, resource_type_id: str) -> str:
    return ids.alarm_dictionary_id(ocloud_id, resource_type_id)


def alarm_definition_id(ocloud_id: str, definition_key: str) -> str:
    return stable_id(ocloud_id, "alarm-definition", definition_key)


def probable_cause_id(ocloud_id: str, probable_cause: str) -> str:
    return stable_id(ocloud_id, "probable-cause", probable_cause)


def alarm_record_id(ocloud_id: str, key: str, raised_time: str) -> str:
    """The id of the alarm instance ``key`` raised at ``raised_time`` (wire form)."""
    return stable_id(ocloud_id, "alarm", f"{key}@{raised_time}")


class AlarmCatalog:
    """The dictionaries of ``source`` (none without a source), rendered on demand."""

    def __init__(
        self,
        ocloud_id: str,
        source: AlarmSource | None,
        *,
        resource_type: ResourceTypeLookup | None = None,
    ) -> None:
        self.ocloud_id = ocloud_id
        self._source = source
        self._resource_type = resource_type or (lambda _id: None)

    def specs(self) -> Sequence[AlarmDictionarySpec]:
        if self._source is None:
            return ()
        try:
            return self._source.alarm_dictionaries()
        except Exception as exc:
            _log.warning("alarm dictionaries unavailable", error=type(exc).__name__)
            raise BackendUnavailableError(
                "the backend's alarm dictionaries are unavailable"
            ) from exc

    def definition(self, resource_type_id: str, definition_key: str) -> AlarmDefinitionSpec | None:
        """The definition ``definition_key`` of the type's dictionary (or, failing that,
        of any dictionary: definitions are shared by resource types)."""
        specs = self.specs()
        fallback = None
        for spec in specs:
            for definition in spec.definitions:
                if definition.key != definition_key:
                    continue
                if spec.resource_type_id == resource_type_id:
                    return definition
                fallback = fallback or definition
        return fallback

    def dictionaries(self) -> list[AlarmDictionary]:
        """Every dictionary, sorted by id."""
        rendered = [self._render(spec) for spec in self.specs()]
        return sorted(rendered, key=lambda d: d.alarm_dictionary_id)

    def dictionary_of_type(self, resource_type_id: str) -> AlarmDictionary | None:
        for spec in self.specs():
            if spec.resource_type_id == resource_type_id:
                return self._render(spec)
        return None

    def probable_causes(self) -> list[ProbableCause]:
        """Every probable cause named by a definition, sorted by id (first one wins)."""
        causes: dict[str, ProbableCause] = {}
        for spec in self.specs():
            for definition in spec.definitions:
                cause_id = probable_cause_id(self.ocloud_id, definition.probable_cause)
                causes.setdefault(
                    cause_id,
                    ProbableCause(
                        probable_cause_id=cause_id,
                        name=definition.probable_cause,
                        description=definition.probable_cause_description,
                    ),
                )
        return [causes[cause_id] for cause_id in sorted(causes)]

    def _render(self, spec: AlarmDictionarySpec) -> AlarmDictionary:
        resource_type = self._resource_type(spec.resource_type_id)
        if resource_type is not None:
            entity_type = f"{resource_type.model}-{resource_type.version}"
            vendor = spec.vendor or resource_type.vendor
        else:
            entity_type, vendor = spec.resource_type_id, spec.vendor
        return AlarmDictionary(
            alarm_dictionary_id=alarm_dictionary_id(self.ocloud_id, spec.resource_type_id),
            alarm_dictionary_version=spec.version,
            alarm_dictionary_schema_version=SCHEMA_VERSION,
            entity_type=entity_type,
            vendor=vendor,
            alarm_definition=[
                self._definition(definition, spec.version) for definition in spec.definitions
            ],
        )

    def _definition(self, spec: AlarmDefinitionSpec, version: str) -> AlarmDefinition:
        return AlarmDefinition(
            alarm_definition_id=alarm_definition_id(self.ocloud_id, spec.key),
            alarm_name=spec.name,
            alarm_last_change=version,
            alarm_change_type=spec.change_type,
            alarm_description=spec.description,
            proposed_repair_actions=spec.proposed_repair_actions,
            clearing_type=spec.clearing_type,
            alarm_additional_fields={
                **dict(spec.extensions),
                "probableCauseID": probable_cause_id(self.ocloud_id, spec.probable_cause),
                "probableCause": spec.probable_cause,
                "perceivedSeverity": spec.severity,
            },
        )
