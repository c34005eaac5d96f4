"""Inventory subscriptions on netweave's own surface: ``/o2ims/v1/subscriptions``.

The same subscriptions as ``/o2ims-infrastructureInventory/v1/subscriptions`` (one
:class:`SubscriptionService`, one store), in the envelope of netweave's API:

* ``GET`` lists ``{"items": [...], "nextMarker": ...}`` with the SOL013 filter, field
  selection and ``nextpage_opaque_marker`` parameters;
* ``POST`` creates (201, ``Location``, the subscription); ``GET /{id}``; ``DELETE /{id}``
  answers 204;
* ``PUT /{id}`` replaces ``callback``, ``filter`` and ``consumerSubscriptionId`` (200,
  the subscription), validated like a creation; deliveries already queued still go to
  the callback they were queued for, later changes use the new callback and filter;
* ``filter`` may be a SOL013 string or its object form (``{"resourcePoolId": "abc"}``,
  see :mod:`netweave.notifications.filter_objects`); it is stored and shown as the string.

The access middleware has checked the route's permission before a handler runs; what is
left here is the tenant scope, handed to the service as on the standard surface (another
tenant's subscriptions answer 404).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from netweave.api.params import field_params, list_query
from netweave.errors import InvalidRequestError
from netweave.models.common import ProblemDetails, WireModel
from netweave.models.subscriptions import (
    FILTER_MAX_LENGTH,
    GatewaySubscriptionBody,
    Subscription,
    SubscriptionCreate,
)
from netweave.notifications.filter_objects import filter_text
from netweave.notifications.subscriptions import SubscriptionService
from netweave.security.principal import tenant_of

__all__ = ["ITEM", "PREFIX", "SubscriptionList", "router"]

PREFIX = "/o2ims/v1/subscriptions"
#: the path template of one subscription (as the route table names it)
ITEM = f"{PREFIX}/{{subscriptionId}}"
_JSON = "application/json"
_PROBLEM = {"model": ProblemDetails, "content": {"application/problem+json": {}}}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _PROBLEM}

router = APIRouter(
    prefix=PREFIX,
    tags=["netweave subscriptions"],
    responses={400: _PROBLEM, 401: _PROBLEM, 403: _PROBLEM, 500: _PROBLEM, 503: _PROBLEM},
)


class SubscriptionList(WireModel):
    """One page of subscriptions (documentation of the answer's shape)."""

    items: list[Subscription]
    next_marker: str | None = None


def _service(request: Request) -> SubscriptionService:
    service: SubscriptionService = request.app.state.subscriptions
    return service


def _standard(body: GatewaySubscriptionBody) -> SubscriptionCreate:
    """The body as the service takes it: the filter as SOL013 text (400 naming the key
    of an object filter that has no SOL013 form, or a text that is too long)."""
    text = filter_text(body.filter)
    if text is not None and len(text) > FILTER_MAX_LENGTH:
        raise InvalidRequestError(
            f"filter: at most {FILTER_MAX_LENGTH} characters as SOL013 text (got {len(text)})",
            attributes={"parameter": "filter"},
        )
    return SubscriptionCreate(
        callback=body.callback,
        consumer_subscription_id=body.consumer_subscription_id,
        filter=text,
    )


def _json(content: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=orjson.dumps(content), status_code=status, media_type=_JSON, headers=headers
    )


@router.get(
    "",
    response_model=SubscriptionList,
    operation_id="listGatewaySubscriptions",
    summary="List inventory subscriptions",
)
async def list_gateway_subscriptions(request: Request) -> Response:
    page = await _service(request).list(
        list_query(request.query_params), tenant=tenant_of(request.scope)
    )
    body = b'{"items":[' + page.items + b'],"nextMarker":' + orjson.dumps(page.next_marker) + b"}"
    return Response(content=body, media_type=_JSON)


@router.post(
    "",
    status_code=201,
    response_model=Subscription,
    operation_id="createGatewaySubscription",
    summary="Subscribe a callback to inventory changes (filter as SOL013 text or an object)",
)
async def create_gateway_subscription(request: Request, body: GatewaySubscriptionBody) -> Response:
    created = await _service(request).create(_standard(body), tenant=tenant_of(request.scope))
    location = str(
        request.url_for("get_gateway_subscription", subscriptionId=created["subscriptionId"])
    )
    return _json(created, 201, {"Location": location})


@router.get(
    "/{subscriptionId}",
    response_model=Subscription,
    responses=_NOT_FOUND,
    operation_id="getGatewaySubscription",
    summary="Get one inventory subscription",
)
async def get_gateway_subscription(request: Request, subscriptionId: str) -> Response:
    body = await _service(request).get(
        subscriptionId, field_params(request.query_params), tenant=tenant_of(request.scope)
    )
    return Response(content=body, media_type=_JSON)


@router.put(
    "/{subscriptionId}",
    response_model=Subscription,
    responses=_NOT_FOUND,
    operation_id="replaceGatewaySubscription",
    summary="Replace the callback, filter and consumerSubscriptionId of a subscription "
    "(queued notifications still go to the callback they were queued for)",
)
async def replace_gateway_subscription(
    request: Request, subscriptionId: str, body: GatewaySubscriptionBody
) -> Response:
    if body.subscription_id is not None and body.subscription_id != subscriptionId:
        raise InvalidRequestError(
            f"subscriptionId {body.subscription_id!r} in the body is not the one of the path",
            attributes={"parameter": "subscriptionId"},
        )
    replaced = await _service(request).replace(
        subscriptionId, _standard(body), tenant=tenant_of(request.scope)
    )
    return _json(replaced)


@router.delete(
    "/{subscriptionId}",
    status_code=204,
    responses=_NOT_FOUND,
    operation_id="deleteGatewaySubscription",
    summary="Delete an inventory subscription (its pending notifications are dropped)",
)
async def delete_gateway_subscription(request: Request, subscriptionId: str) -> Response:
    await _service(request).delete(subscriptionId, tenant=tenant_of(request.scope))
    return Response(status_code=204)
