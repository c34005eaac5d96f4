"""The wire shapes of the O2-IMS monitoring objects, written down from ../shared/spec.

LATEST edition (``oran-o2ims-latest``: the monitoring API and the common schemas of the
alarm dictionary); ``ProbableCause`` as in the probable-causes edition (the same fields).
Each entry lists every attribute with its JSON type and whether the spec requires it.
``test_alarm_models`` holds the models to these and these to the spec files when present.
"""

from __future__ import annotations

from typing import Any

from tests.api.spec_shapes import BOOL, INT, LIST, OBJ, STR, UUID
from tests.api.spec_shapes import SHAPES as INVENTORY_SHAPES

SHAPES: dict[str, dict[str, tuple[Any, bool]]] = {
    "AlarmEventRecord": {
        "alarmEventRecordId": (UUID, True),
        "alarmDefinitionID": (UUID, True),
        "probableCauseID": (UUID, True),
        "alarmRaisedTime": (STR, True),
        "alarmChangedTime": (STR, False),
        "alarmClearedTime": (STR, False),
        "alarmAcknowledgedTime": (STR, False),
        "alarmAcknowledged": (BOOL, True),
        "resourceTypeID": (UUID, True),
        "resourceID": (UUID, True),
        "perceivedSeverity": (INT, True),
        "extensions": (OBJ, True),
    },
    "AlarmEventRecordModifications": {
        "alarmAcknowledged": (BOOL, False),
        "perceivedSeverity": (INT, False),
    },
    "AlarmSubscriptionInfo": {
        "alarmSubscriptionId": (UUID, False),  # read-only: always sent by netweave
        "consumerSubscriptionId": (UUID, False),
        "filter": (STR, False),
        "callback": (STR, True),
    },
    "AlarmEventNotification": {
        "globalCloudID": (UUID, True),
        "consumerSubscriptionId": (UUID, False),
        "notificationEventType": (INT, True),
        "objectRef": (STR, False),
        "alarmEventRecordId": (UUID, True),
        "resourceTypeID": (UUID, True),
        "resourceID": (UUID, True),
        "alarmDefinitionID": (UUID, True),
        "probableCauseID": (UUID, True),
        "alarmRaisedTime": (STR, True),
        "alarmChangedTime": (STR, True),
        "alarmAcknowledgeTime": (STR, False),
        "alarmAcknowledged": (BOOL, True),
        "perceivedSeverity": (INT, True),
        "extensions": (OBJ, True),
    },
    "AlarmServiceConfiguration": {
        "retentionPeriod": (INT, True),
        "extensions": (OBJ, True),
    },
    "AlarmServiceConfigurationPatch": {
        "retentionPeriod": (INT, False),
        "extensions": (OBJ, False),
    },
    "AlarmDictionary": {
        "alarmDictionaryId": (UUID, True),
        "alarmDictionaryVersion": (STR, True),
        "alarmDictionarySchemaVersion": (STR, True),
        "entityType": (STR, True),
        "vendor": (STR, True),
        "managementInterfaceId": (LIST, True),
        "pkNotificationField": (LIST, True),
        "alarmDefinition": (LIST, True),
    },
    "AlarmDefinition": {
        "alarmDefinitionId": (UUID, True),
        "alarmName": (STR, True),
        "alarmLastChange": (STR, True),
        "alarmChangeType": (STR, True),
        "alarmDescription": (STR, True),
        "proposedRepairActions": (STR, True),
        "clearingType": (STR, True),
        "managementInterfaceId": (LIST, True),
        "pkNotificationField": (LIST, True),
        "alarmAdditionalFields": (OBJ, False),
    },
    "ProbableCause": {
        "probableCauseId": (UUID, True),
        "name": (STR, True),
        "description": (STR, True),
    },
    "APIVersions": INVENTORY_SHAPES["APIVersions"],
}

ENUMS = {
    ("AlarmEventRecord", "perceivedSeverity"): {0, 1, 2, 3, 4, 5},
    ("AlarmEventNotification", "perceivedSeverity"): {0, 1, 2, 3, 4, 5},
    ("AlarmEventNotification", "notificationEventType"): {0, 1, 2, 3},
    ("AlarmDefinition", "clearingType"): {"AUTOMATIC", "MANUAL"},
    ("AlarmDefinition", "alarmChangeType"): {"ADDED", "DELETED", "MODIFIED"},
}


def assert_shape(name: str, obj: Any) -> None:
    """``obj`` is a spec-faithful ``name``: no unknown attribute, all required ones, right types."""
    import uuid

    shape = SHAPES[name]
    assert isinstance(obj, dict), f"{name} must be a JSON object, got {type(obj).__name__}"
    unknown = set(obj) - set(shape)
    assert not unknown, f"{name} has attributes the spec does not define: {sorted(unknown)}"
    for attribute, (kind, required) in shape.items():
        if attribute not in obj:
            assert not required, f"{name} lacks required attribute {attribute}"
            continue
        value = obj[attribute]
        if kind == UUID:
            assert isinstance(value, str), f"{name}.{attribute} must be a string"
            uuid.UUID(value)
        elif kind is INT:
            assert isinstance(value, int) and not isinstance(value, bool), f"{name}.{attribute}"
        else:
            assert isinstance(value, kind), f"{name}.{attribute} must be {kind.__name__}"
        allowed = ENUMS.get((name, attribute))
        if allowed is not None:
            assert value in allowed, f"{name}.{attribute}={value!r} is not in {sorted(allowed)}"
    if name == "AlarmDictionary":
        for definition in obj["alarmDefinition"]:
            assert_shape("AlarmDefinition", definition)
