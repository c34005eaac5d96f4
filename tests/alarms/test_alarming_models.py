"""The monitoring wire models against the spec: attribute spellings (``alarmDefinitionID``
but ``alarmEventRecordId``), required sets, enumerations, time format."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from tests.alarms.spec_shapes import SHAPES

from netweave.models import alarms as models
from netweave.models.alarms import (
    AlarmEventType,
    PerceivedSeverity,
    format_time,
    severity_label,
)

MODELS: dict[str, type[BaseModel]] = {
    "AlarmEventRecord": models.AlarmEventRecord,
    "AlarmEventRecordModifications": models.AlarmEventRecordModifications,
    "AlarmSubscriptionInfo": models.AlarmSubscriptionInfo,
    "AlarmEventNotification": models.AlarmEventNotification,
    "AlarmServiceConfiguration": models.AlarmServiceConfiguration,
    "AlarmServiceConfigurationPatch": models.AlarmServiceConfigurationPatch,
    "AlarmDictionary": models.AlarmDictionary,
    "AlarmDefinition": models.AlarmDefinition,
    "ProbableCause": models.ProbableCause,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_spell_the_spec(name: str) -> None:
    model = MODELS[name]
    wire = {info.alias or field for field, info in model.model_fields.items()}
    assert wire == set(SHAPES[name]), name


def test_the_id_spellings() -> None:
    record = set(SHAPES["AlarmEventRecord"])
    assert {"alarmDefinitionID", "probableCauseID", "resourceTypeID", "resourceID"} <= record
    assert "alarmEventRecordId" in record
    assert "globalCloudID" in SHAPES["AlarmEventNotification"]
    assert "alarmAcknowledgeTime" in SHAPES["AlarmEventNotification"]  # sic, as the spec


def test_enumerations() -> None:
    assert [(s.name, int(s)) for s in PerceivedSeverity] == [
        ("CRITICAL", 0),
        ("MAJOR", 1),
        ("MINOR", 2),
        ("WARNING", 3),
        ("INDETERMINATE", 4),
        ("CLEARED", 5),
    ]
    assert [(t.name, int(t)) for t in AlarmEventType] == [
        ("NEW", 0),
        ("CHANGE", 1),
        ("CLEAR", 2),
        ("ACKNOWLEDGE", 3),
    ]
    assert severity_label(0) == "critical" and severity_label(42) == "indeterminate"


def test_times_are_fixed_width_utc() -> None:
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(2_000_000_000.5) == "2033-05-18T03:33:20.500Z"
    times = [format_time(t) for t in (1.0, 9.999, 10.0, 1e9, 2e9)]
    assert times == sorted(times)  # string order is time order (SOL013 gt/lt compare strings)
