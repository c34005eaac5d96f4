"""The ``InventoryChangeNotification`` body POSTed to inventory subscribers.

Shape (``Content-Type: application/json``), per event type::

    field                    create  modify  delete
    notificationId           yes     yes     yes     UUID, stable across retries
    consumerSubscriptionId   when the subscription has one
    notificationEventType    0       1       2
    objectRef                yes*    yes*    -       absolute URL of the object
    priorObjectState         -       yes     yes     the full wire object
    postObjectState          yes     yes     -       the full wire object

(*) The spec makes ``objectRef`` optional; it is sent whenever an ``object_ref`` is given.
The object states are the full wire objects of the standard inventory API (``to_wire()``:
camelCase, absent optionals omitted), not strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote
from uuid import UUID

import orjson
from pydantic import model_validator

from netweave.adapters.base import EventType, InventoryEvent
from netweave.models.common import WireModel
from netweave.models.inventory import ObjectKind
from netweave.notifications.matching import wire_state
from netweave.store.base import SubscriptionRecord

__all__ = [
    "INVENTORY_ROOT",
    "InventoryChangeNotification",
    "PreparedNotification",
    "inventory_notification",
    "object_ref",
    "prepare_notification",
]

#: the standard inventory API below the apiRoot
INVENTORY_ROOT = "/o2ims-infrastructureInventory/v1"

#: the collection of each kind below :data:`INVENTORY_ROOT` (resources are nested in pools)
_COLLECTIONS: dict[ObjectKind, str] = {
    ObjectKind.RESOURCE_POOL: "resourcePools",
    ObjectKind.RESOURCE_TYPE: "resourceTypes",
    ObjectKind.DEPLOYMENT_MANAGER: "deploymentManagers",
    ObjectKind.LOCATION: "locations",
    ObjectKind.OCLOUD_SITE: "oCloudSites",
}


class InventoryChangeNotification(WireModel):
    """The notification of one inventory change, as the subscriber receives it.

    Validation enforces the per-event-type rules of the module docstring: no ``objectRef``
    on a delete, ``priorObjectState`` exactly on modify and delete, ``postObjectState``
    exactly on create and modify.
    """

    notification_id: UUID
    consumer_subscription_id: str | None = None
    notification_event_type: EventType
    object_ref: str | None = None
    prior_object_state: dict[str, Any] | None = None
    post_object_state: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fields_of_event_type(self) -> Self:
        event_type = self.notification_event_type
        if event_type is EventType.DELETE and self.object_ref is not None:
            raise ValueError("notificationEventType 2 (delete) forbids objectRef")
        expected = {
            "priorObjectState": (event_type is not EventType.CREATE, self.prior_object_state),
            "postObjectState": (event_type is not EventType.DELETE, self.post_object_state),
        }
        for name, (wanted, state) in expected.items():
            if (state is not None) != wanted:
                verb = "requires" if wanted else "forbids"
                raise ValueError(f"notificationEventType {int(event_type)} {verb} {name}")
        return self


def object_ref(api_root: str, event: InventoryEvent) -> str | None:
    """The absolute URL of the event's object in the standard inventory API; None for a
    delete (the object no longer exists).

    ``api_root`` is the O2-IMS apiRoot (``https://o2ims.example.net``, or with a path
    prefix); identifiers are percent-encoded as path segments.
    """
    if event.type is EventType.DELETE:
        return None
    root = api_root.rstrip("/") + INVENTORY_ROOT
    if event.kind is ObjectKind.CLOUD:
        return root
    object_id = quote(event.object_id, safe="")
    if event.kind is ObjectKind.RESOURCE:
        state = event.post
        pool_id = state.parent_id if state is not None else None
        if pool_id is None:
            raise ValueError(f"resource {event.object_id} has no resourcePoolId")
        return f"{root}/resourcePools/{quote(pool_id, safe='')}/resources/{object_id}"
    return f"{root}/{_COLLECTIONS[event.kind]}/{object_id}"


@dataclass(frozen=True, slots=True)
class PreparedNotification:
    """The parts of a notification that are the same for every subscriber of one event:
    render them once, then :meth:`render` the body of each subscriber."""

    event_type: EventType
    object_ref: str | None
    prior: dict[str, Any] | None
    post: dict[str, Any] | None

    def render(self, subscription: SubscriptionRecord, *, notification_id: str) -> bytes:
        """The JSON body for ``subscription``."""
        body: dict[str, Any] = {"notificationId": notification_id}
        if subscription.consumer_subscription_id is not None:
            body["consumerSubscriptionId"] = subscription.consumer_subscription_id
        body["notificationEventType"] = int(self.event_type)
        if self.object_ref is not None:
            body["objectRef"] = self.object_ref
        if self.prior is not None:
            body["priorObjectState"] = self.prior
        if self.post is not None:
            body["postObjectState"] = self.post
        return orjson.dumps(body)


def prepare_notification(event: InventoryEvent, *, object_ref: str | None) -> PreparedNotification:
    """Render the wire states of ``event`` once, for every subscriber it goes to.

    ``object_ref`` is dropped on a delete event, which carries none.
    """
    with_prior = event.type is not EventType.CREATE
    with_post = event.type is not EventType.DELETE
    return PreparedNotification(
        event_type=event.type,
        object_ref=object_ref if event.type is not EventType.DELETE else None,
        prior=wire_state(event.prior) if with_prior and event.prior is not None else None,
        post=wire_state(event.post) if with_post and event.post is not None else None,
    )


def inventory_notification(
    event: InventoryEvent,
    subscription: SubscriptionRecord,
    *,
    notification_id: str,
    object_ref: str | None,
) -> bytes:
    """The ``InventoryChangeNotification`` JSON body of ``event`` for ``subscription``.

    ``notification_id`` is a UUID chosen once per (event, subscription) and reused on every
    retry; ``object_ref`` comes from :func:`object_ref`. To send one event to many
    subscribers, :func:`prepare_notification` once and render each body from it.
    """
    prepared = prepare_notification(event, object_ref=object_ref)
    return prepared.render(subscription, notification_id=notification_id)
