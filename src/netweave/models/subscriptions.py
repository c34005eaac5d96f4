"""Wire models of inventory subscriptions (O2-IMS ``Subscription``)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator

from netweave.models.common import WireModel
from netweave.models.ids import canonical_uuid

#: the longest filter text a subscription may hold
FILTER_MAX_LENGTH = 4096
#: the longest callback URL
CALLBACK_MAX_LENGTH = 2048


class Subscription(WireModel):
    """An inventory subscription as the API shows it."""

    subscription_id: str = Field(description="Assigned by the O-Cloud (read-only).")
    consumer_subscription_id: str | None = Field(
        default=None, description="Chosen by the SMO; echoed in every notification."
    )
    filter: str | None = Field(
        default=None,
        description="SOL013 filter selecting the events to notify; absent = every event. "
        "`objectType` picks the kind (ResourcePoolInfo, ResourceInfo, ...); `|` separates "
        "alternatives.",
    )
    callback: str = Field(description="Absolute http(s) URL the notifications are POSTed to.")


class SubscriptionCreate(WireModel):
    """The body of ``POST .../subscriptions``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    callback: str = Field(min_length=1, max_length=CALLBACK_MAX_LENGTH)
    consumer_subscription_id: str | None = None
    filter: str | None = Field(default=None, max_length=FILTER_MAX_LENGTH)
    subscription_id: str | None = Field(
        default=None, description="Read-only; ignored when sent.", exclude=True
    )

    @field_validator("consumer_subscription_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return canonical_uuid(value, name="consumerSubscriptionId")


class GatewaySubscriptionBody(WireModel):
    """The body of ``POST`` and ``PUT /o2ims/v1/subscriptions[/{id}]`` (netweave's surface).

    The fields of :class:`SubscriptionCreate`, but ``filter`` may also be the object form
    (``{"resourcePoolId": "abc"}``), which the router turns into SOL013 text before the
    subscription service sees it (:mod:`netweave.notifications.filter_objects`).  A PUT
    replaces all three of ``callback``, ``filter`` and ``consumerSubscriptionId``: one left
    out is cleared.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    callback: str = Field(min_length=1, max_length=CALLBACK_MAX_LENGTH)
    consumer_subscription_id: str | None = None
    filter: str | dict[str, Any] | None = Field(
        default=None,
        description="A SOL013 filter string, or an object of attribute paths to a value "
        '(`eq`) or a list of values (`in`), all ANDed: `{"resourcePoolId": "abc", '
        '"extensions/zone": ["a", "b"]}`.  Stored and shown as the SOL013 string.',
        examples=["(eq,objectType,ResourceInfo)", {"resourcePoolId": "abc"}],
    )
    subscription_id: str | None = Field(
        default=None,
        description="Read-only; ignored on POST, and on PUT it must be the id of the path.",
        exclude=True,
    )

    @field_validator("consumer_subscription_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return canonical_uuid(value, name="consumerSubscriptionId")
