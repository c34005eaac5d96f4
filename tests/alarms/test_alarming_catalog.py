"""The alarm catalogue: dictionaries, definitions and probable causes with stable ids."""

from __future__ import annotations

import uuid

import orjson
import pytest
from tests.alarms.fakes import (
    NODE_TYPE,
    NOT_READY,
    OCLOUD,
    STORAGE_TYPE,
    WARNING_EVENT,
    FakeAlarmSource,
    dictionaries,
)

from netweave.adapters.alarms import AlarmDictionarySpec
from netweave.alarms.catalog import (
    AlarmCatalog,
    alarm_definition_id,
    alarm_dictionary_id,
    probable_cause_id,
)
from netweave.alarms.dictionaries import DictionaryService
from netweave.errors import BackendUnavailableError, NotFoundError
from netweave.models.inventory import ResourceType
from netweave.query import PageMarkers
from netweave.query.listing import FieldSelectionParams, ListQuery

NODE = ResourceType(
    resource_type_id=NODE_TYPE,
    name="edge server",
    description="",
    vendor="Dell",
    model="PowerEdge XR11",
    version="1.14",
    resource_kind="PHYSICAL",
    resource_class="COMPUTE",
)


def catalog(*specs: AlarmDictionarySpec) -> AlarmCatalog:
    source = FakeAlarmSource(list(specs) or dictionaries(NODE_TYPE, STORAGE_TYPE))
    return AlarmCatalog(OCLOUD, source, resource_type={NODE_TYPE: NODE}.get)


def test_ids_are_stable_and_distinct() -> None:
    ids = {
        alarm_dictionary_id(OCLOUD, NODE_TYPE),
        alarm_definition_id(OCLOUD, "node-not-ready"),
        probable_cause_id(OCLOUD, "node-not-ready"),
    }
    assert len(ids) == 3  # the kinds never collide, even on the same key
    assert alarm_dictionary_id(OCLOUD, NODE_TYPE) == alarm_dictionary_id(OCLOUD, NODE_TYPE)
    other_cloud = str(uuid.uuid4())
    assert alarm_definition_id(other_cloud, "x") != alarm_definition_id(OCLOUD, "x")


def test_dictionaries() -> None:
    rendered = catalog().dictionaries()
    assert [d.alarm_dictionary_id for d in rendered] == sorted(
        alarm_dictionary_id(OCLOUD, t) for t in (NODE_TYPE, STORAGE_TYPE)
    )
    node = catalog().dictionary_of_type(NODE_TYPE)
    assert node is not None
    wire = node.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire["entityType"] == "PowerEdge XR11-1.14"
    assert wire["vendor"] == "Example"  # the dictionary's own vendor wins
    assert wire["alarmDictionaryVersion"] == "1.2"
    assert wire["managementInterfaceId"] == ["O2IMS"]
    assert wire["pkNotificationField"] == ["alarmDefinitionID"]
    definitions = {d["alarmName"]: d for d in wire["alarmDefinition"]}
    manual = definitions["Node warning event"]
    assert manual["alarmDefinitionId"] == alarm_definition_id(OCLOUD, WARNING_EVENT.key)
    assert manual["clearingType"] == "MANUAL" and manual["alarmLastChange"] == "1.2"
    assert manual["alarmAdditionalFields"] == {
        "eventDriven": True,
        "probableCauseID": probable_cause_id(OCLOUD, WARNING_EVENT.probable_cause),
        "probableCause": WARNING_EVENT.probable_cause,
        "perceivedSeverity": 3,
    }
    # a type the inventory does not describe: the id stands for the entity type
    storage = catalog().dictionary_of_type(STORAGE_TYPE)
    assert storage is not None and storage.entity_type == STORAGE_TYPE
    assert catalog().dictionary_of_type(str(uuid.uuid4())) is None


def test_definitions_and_probable_causes() -> None:
    shared = catalog()
    assert shared.definition(NODE_TYPE, "node-not-ready") == NOT_READY
    assert shared.definition("another type", "node-not-ready") == NOT_READY  # shared
    assert shared.definition(NODE_TYPE, "no-such") is None
    causes = shared.probable_causes()
    assert [c.name for c in causes] == sorted(
        [NOT_READY.probable_cause, WARNING_EVENT.probable_cause],
        key=lambda name: probable_cause_id(OCLOUD, name),
    )
    assert [c.probable_cause_id for c in causes] == sorted(c.probable_cause_id for c in causes)


def test_no_source_no_dictionaries() -> None:
    empty = AlarmCatalog(OCLOUD, None)
    assert empty.dictionaries() == [] and empty.probable_causes() == []
    assert empty.definition(NODE_TYPE, "node-not-ready") is None


def test_a_failing_source_is_unavailable() -> None:
    class Broken(FakeAlarmSource):
        def alarm_dictionaries(self):
            raise RuntimeError("backend down")

    with pytest.raises(BackendUnavailableError):
        AlarmCatalog(OCLOUD, Broken()).dictionaries()


def test_dictionary_service() -> None:
    known = {NODE_TYPE}
    ready = {"value": True}

    def has_type(type_id: str) -> bool | None:
        return (type_id in known) if ready["value"] else None

    service = DictionaryService(
        catalog(), markers=PageMarkers(b"k" * 32), page_size=1, has_resource_type=has_type
    )
    page = service.list_dictionaries(ListQuery())
    assert page.total == 2 and page.count == 1 and page.next_marker is not None
    node_id = alarm_dictionary_id(OCLOUD, NODE_TYPE)
    one = orjson.loads(service.get_dictionary(node_id, FieldSelectionParams(fields="vendor")))
    assert one == {"vendor": "Example"}
    of_type = orjson.loads(service.dictionary_of_type(NODE_TYPE, FieldSelectionParams()))
    assert of_type["alarmDictionaryId"] == node_id
    with pytest.raises(NotFoundError):
        service.get_dictionary(str(uuid.uuid4()), FieldSelectionParams())
    with pytest.raises(NotFoundError, match="does not exist"):
        service.dictionary_of_type(str(uuid.uuid4()), FieldSelectionParams())
    known.add(str(uuid.UUID(int=7)))
    with pytest.raises(NotFoundError, match="no alarm dictionary"):
        service.dictionary_of_type(str(uuid.UUID(int=7)), FieldSelectionParams())
    ready["value"] = False
    with pytest.raises(BackendUnavailableError):
        service.dictionary_of_type(NODE_TYPE, FieldSelectionParams())
    causes = service.list_probable_causes(ListQuery(filter="(cont,name,Warning)"))
    (cause,) = orjson.loads(b"[" + causes.items + b"]")
    assert cause["name"] == WARNING_EVENT.probable_cause
    got = service.get_probable_cause(cause["probableCauseId"], FieldSelectionParams())
    assert orjson.loads(got) == cause
    with pytest.raises(NotFoundError):
        service.get_probable_cause(str(uuid.uuid4()), FieldSelectionParams())
