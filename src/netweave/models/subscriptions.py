"""Wire models of inventory subscriptions (O2-IMS ``Subscription``)."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from netweave.models.common import WireModel
from netweave.models.ids import canonical_uuid


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

    callback: str = Field(min_length=1, max_length=2048)
    consumer_subscription_id: str | None = None
    filter: str | None = Field(default=None, max_length=4096)
    subscription_id: str | None = Field(
        default=None, description="Read-only; ignored when sent.", exclude=True
    )

    @field_validator("consumer_subscription_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return canonical_uuid(value, name="consumerSubscriptionId")
