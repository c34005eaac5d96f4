"""Wire models of the O2-IMS infrastructure monitoring service (alarms API v1).

The shapes follow the LATEST openshift-kni edition (spec 11.0 / R003-v06, see
``../shared/spec``), which spells the alarm references with an upper-case ``ID``:
``alarmDefinitionID``, ``probableCauseID``, ``resourceTypeID``, ``resourceID`` and
``globalCloudID`` -- but ``alarmEventRecordId``.  :class:`~netweave.models.common.WireModel`'s
alias generator would write ``alarmDefinitionId``, so those fields carry explicit aliases.
The alarm dictionary (served on the inventory surface) keeps the inventory's ``...Id``
spelling, as the common schema does.

Two spellings of the spec are kept although they look like typos, because consumers are
written against them: the notification's ``alarmAcknowledgeTime`` (the record says
``alarmAcknowledgedTime``).

Times are RFC 3339 UTC strings of fixed width with milliseconds
(``2042-07-21T17:32:28.000Z``), so SOL013 ``gt``/``lt`` filters, which compare strings,
order them by time.
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictInt, field_validator

from netweave.models.common import WireModel
from netweave.models.ids import canonical_uuid
from netweave.models.subscriptions import CALLBACK_MAX_LENGTH, FILTER_MAX_LENGTH

__all__ = [
    "AlarmDefinition",
    "AlarmDictionary",
    "AlarmEventNotification",
    "AlarmEventRecord",
    "AlarmEventRecordModifications",
    "AlarmEventType",
    "AlarmServiceConfiguration",
    "AlarmServiceConfigurationPatch",
    "AlarmSubscriptionCreate",
    "AlarmSubscriptionInfo",
    "PerceivedSeverity",
    "ProbableCause",
    "format_time",
    "severity_label",
]


class PerceivedSeverity(IntEnum):
    """``perceivedSeverity``: an integer on the wire."""

    CRITICAL = 0
    MAJOR = 1
    MINOR = 2
    WARNING = 3
    INDETERMINATE = 4
    CLEARED = 5


class AlarmEventType(IntEnum):
    """``notificationEventType`` of an alarm notification."""

    NEW = 0
    CHANGE = 1
    CLEAR = 2
    ACKNOWLEDGE = 3


def severity_label(severity: int) -> str:
    """The metrics label of a severity (``critical`` ... ``cleared``); bounded."""
    try:
        return PerceivedSeverity(severity).name.lower()
    except ValueError:
        return "indeterminate"


def format_time(epoch: float) -> str:
    """``epoch`` seconds as the fixed-width RFC 3339 UTC form alarms use."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class AlarmEventRecord(WireModel):
    """One alarm: raised, maybe changed, acknowledged, cleared."""

    alarm_event_record_id: str = Field(description="Locally unique within the O-Cloud.")
    alarm_definition_id: str = Field(
        alias="alarmDefinitionID", description="The alarm definition in the alarm dictionary."
    )
    probable_cause_id: str = Field(alias="probableCauseID")
    alarm_raised_time: str = Field(description="When the alarm was raised (RFC 3339, UTC).")
    alarm_changed_time: str | None = Field(
        default=None, description="When any value of the record last changed."
    )
    alarm_cleared_time: str | None = None
    alarm_acknowledged_time: str | None = None
    alarm_acknowledged: bool = False
    resource_type_id: str = Field(alias="resourceTypeID")
    resource_id: str = Field(alias="resourceID")
    perceived_severity: PerceivedSeverity
    extensions: dict[str, Any] = Field(default_factory=dict)


class AlarmEventRecordModifications(WireModel):
    """The body of ``PATCH .../alarms/{id}`` and its answer: one of the two fields."""

    alarm_acknowledged: bool | None = None
    perceived_severity: PerceivedSeverity | None = Field(
        default=None, description="Only 5 (CLEARED) may be set, on MANUAL alarms."
    )


class AlarmSubscriptionInfo(WireModel):
    """An alarm subscription as the API shows it."""

    alarm_subscription_id: str = Field(description="Assigned by the O-Cloud (read-only).")
    consumer_subscription_id: str | None = None
    filter: str | None = Field(
        default=None,
        description="NEW, CHANGE, CLEAR or ACKNOWLEDGE (the notification types to send), or a "
        "SOL013 filter over the AlarmEventRecord's attributes and `notificationEventType`; "
        "absent = every event.",
    )
    callback: str


class AlarmSubscriptionCreate(WireModel):
    """The body of ``POST .../alarmSubscriptions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    callback: str = Field(min_length=1, max_length=CALLBACK_MAX_LENGTH)
    consumer_subscription_id: str | None = None
    filter: str | None = Field(default=None, max_length=FILTER_MAX_LENGTH)
    alarm_subscription_id: str | None = Field(
        default=None, description="Read-only; ignored when sent.", exclude=True
    )

    @field_validator("consumer_subscription_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return canonical_uuid(value, name="consumerSubscriptionId")


class AlarmEventNotification(WireModel):
    """The body POSTed to alarm subscribers."""

    global_cloud_id: str = Field(alias="globalCloudID")
    consumer_subscription_id: str | None = None
    notification_event_type: AlarmEventType
    object_ref: str | None = Field(default=None, description="URL of the AlarmEventRecord.")
    alarm_event_record_id: str
    resource_type_id: str = Field(alias="resourceTypeID")
    resource_id: str = Field(alias="resourceID")
    alarm_definition_id: str = Field(alias="alarmDefinitionID")
    probable_cause_id: str = Field(alias="probableCauseID")
    alarm_raised_time: str
    alarm_changed_time: str
    alarm_acknowledge_time: str | None = None
    alarm_acknowledged: bool
    perceived_severity: PerceivedSeverity
    extensions: dict[str, Any] = Field(default_factory=dict)


class AlarmServiceConfiguration(WireModel):
    """How long cleared alarms are kept (days, at least 1)."""

    retention_period: StrictInt = Field(ge=1, description="Days cleared alarms are kept.")
    extensions: dict[str, Any] = Field(default_factory=dict)


class AlarmServiceConfigurationPatch(WireModel):
    """A JSON merge patch (RFC 7386) of the configuration (documentation of the body)."""

    retention_period: StrictInt | None = Field(default=None, ge=1)
    extensions: dict[str, Any] | None = None


def _o2ims() -> list[Literal["O2IMS"]]:
    return ["O2IMS"]


class AlarmDefinition(WireModel):
    """One kind of alarm a resource type can raise (in an alarm dictionary)."""

    alarm_definition_id: str
    alarm_name: str
    alarm_last_change: str
    alarm_change_type: Literal["ADDED", "DELETED", "MODIFIED"]
    alarm_description: str
    proposed_repair_actions: str
    clearing_type: Literal["AUTOMATIC", "MANUAL"]
    management_interface_id: list[Literal["O2IMS"]] = Field(default_factory=_o2ims)
    pk_notification_field: list[str] = Field(default_factory=lambda: ["alarmDefinitionID"])
    alarm_additional_fields: dict[str, Any] | None = None


class AlarmDictionary(WireModel):
    """The alarms of one resource type."""

    alarm_dictionary_id: str
    alarm_dictionary_version: str
    alarm_dictionary_schema_version: str
    entity_type: str
    vendor: str
    management_interface_id: list[Literal["O2IMS"]] = Field(default_factory=_o2ims)
    pk_notification_field: list[str] = Field(default_factory=lambda: ["alarmDefinitionID"])
    alarm_definition: list[AlarmDefinition]


class ProbableCause(WireModel):
    """A probable cause of alarms (the early-2025 edition's ``/probableCauses``)."""

    probable_cause_id: str
    name: str
    description: str
