"""Standard inventory subscriptions: ``/o2ims-infrastructureInventory/v1/subscriptions``.

POST (201), GET list (bare array, filter/fields/paging like every list), GET one and
DELETE (200, empty body), exactly as the O2-IMS inventory API defines them; every other
method is 405 with ``Allow``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from netweave.api.params import field_params, list_query
from netweave.models.common import ProblemDetails
from netweave.models.subscriptions import Subscription, SubscriptionCreate
from netweave.notifications.subscriptions import SubscriptionService
from netweave.security.principal import tenant_of

PREFIX = "/o2ims-infrastructureInventory/v1/subscriptions"
_JSON = "application/json"
_PROBLEM = {"model": ProblemDetails, "content": {"application/problem+json": {}}}

router = APIRouter(
    prefix=PREFIX,
    tags=["O2-IMS infrastructure inventory subscriptions"],
    responses={400: _PROBLEM, 500: _PROBLEM, 503: _PROBLEM},
)


def _service(request: Request) -> SubscriptionService:
    service: SubscriptionService = request.app.state.subscriptions
    return service


@router.post(
    "",
    status_code=201,
    response_model=Subscription,
    operation_id="createSubscription",
    summary="Subscribe a callback to inventory changes",
)
async def create_subscription(request: Request, body: SubscriptionCreate) -> Response:
    import orjson

    created = await _service(request).create(body, tenant=tenant_of(request.scope))
    return Response(content=orjson.dumps(created), status_code=201, media_type=_JSON)


@router.get(
    "",
    response_model=list[Subscription],
    operation_id="getSubscriptions",
    summary="List inventory subscriptions",
)
async def list_subscriptions(request: Request) -> Response:
    page = await _service(request).list(
        list_query(request.query_params), tenant=tenant_of(request.scope)
    )
    headers = {"X-Total-Count": str(page.total)}
    if page.next_marker is not None:
        next_url = request.url.include_query_params(nextpage_opaque_marker=page.next_marker)
        headers["Link"] = f'<{next_url}>; rel="next"'
    return Response(content=b"[" + page.items + b"]", media_type=_JSON, headers=headers)


@router.get(
    "/{subscriptionId}",
    response_model=Subscription,
    responses={404: _PROBLEM},
    operation_id="getSubscription",
    summary="Get one inventory subscription",
)
async def get_subscription(request: Request, subscriptionId: str) -> Response:
    body = await _service(request).get(
        subscriptionId, field_params(request.query_params), tenant=tenant_of(request.scope)
    )
    return Response(content=body, media_type=_JSON)


@router.delete(
    "/{subscriptionId}",
    status_code=200,
    responses={404: _PROBLEM},
    operation_id="deleteSubscription",
    summary="Delete an inventory subscription (its pending notifications are dropped)",
)
async def delete_subscription(request: Request, subscriptionId: str) -> Response:
    await _service(request).delete(subscriptionId, tenant=tenant_of(request.scope))
    return Response(status_code=200)
