"""The standard O2-IMS infrastructure monitoring surface, ``/o2ims-infrastructureMonitoring``,
and the alarm dictionaries of the inventory surface.

Spec-faithful like the inventory surface: lists are bare JSON arrays with ``X-Total-Count``
and a ``Link: rel="next"`` header (``nextpage_opaque_marker``); alarm subscriptions are
created with 201 and deleted with 200 and an empty body; a method the spec does not define
on a path is 405 with ``Allow``.  ``PATCH`` bodies must be ``application/merge-patch+json``
(415 otherwise).  The alarm and configuration objects carry an ``ETag``; writes honour
``If-Match`` (412).

The dictionary routes of ``/o2ims-infrastructureInventory/v1`` (``alarmDictionaries``,
``resourceTypes/{id}/alarmDictionary``) are reads of the lean router, like the rest of
that surface: :data:`INVENTORY_ROUTES`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from netweave.alarms.configuration import AlarmConfigurationService
from netweave.alarms.dictionaries import DictionaryService
from netweave.alarms.preconditions import etag
from netweave.alarms.service import AlarmService
from netweave.alarms.subscriptions import AlarmSubscriptionService
from netweave.api.lean import LeanHandler, LeanRequest, LeanResponse, LeanRoute
from netweave.api.params import field_params, list_query
from netweave.errors import UnsupportedMediaTypeError
from netweave.models.alarms import (
    AlarmDictionary,
    AlarmEventRecord,
    AlarmEventRecordModifications,
    AlarmServiceConfiguration,
    AlarmServiceConfigurationPatch,
    AlarmSubscriptionCreate,
    AlarmSubscriptionInfo,
    ProbableCause,
)
from netweave.models.common import APIVersion, APIVersions, ProblemDetails
from netweave.query.listing import RenderedPage
from netweave.security.principal import tenant_of

__all__ = ["INVENTORY_ROUTES", "PREFIX", "V1", "router"]

PREFIX = "/o2ims-infrastructureMonitoring"
V1 = f"{PREFIX}/v1"
API_VERSION = "1.0.0"
MERGE_PATCH = "application/merge-patch+json"
_JSON = "application/json"
_PROBLEM = {"model": ProblemDetails, "content": {"application/problem+json": {}}}

router = APIRouter(
    prefix=PREFIX,
    tags=["O2-IMS infrastructure monitoring"],
    responses={400: _PROBLEM, 500: _PROBLEM, 503: _PROBLEM},
)


def _merge_patch_body(model: type[Any]) -> dict[str, Any]:
    """OpenAPI of a body read by hand: a merge patch shaped like ``model``."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {MERGE_PATCH: {"schema": ref}}}}


def _alarms(request: Request) -> AlarmService:
    service: AlarmService = request.app.state.alarms
    return service


def _configuration(request: Request) -> AlarmConfigurationService:
    service: AlarmConfigurationService = request.app.state.alarm_configuration
    return service


def _subscriptions(request: Request) -> AlarmSubscriptionService:
    service: AlarmSubscriptionService = request.app.state.alarm_subscriptions
    return service


def _dictionaries(state: Any) -> DictionaryService:
    service: DictionaryService = state.alarm_dictionaries
    return service


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=orjson.dumps(data), status_code=status, media_type=_JSON, headers=headers
    )


def _page(request: Request, page: RenderedPage) -> Response:
    headers = {"X-Total-Count": str(page.total)}
    if page.next_marker is not None:
        next_url = request.url.include_query_params(nextpage_opaque_marker=page.next_marker)
        headers["Link"] = f'<{next_url}>; rel="next"'
    return Response(content=b"[" + page.items + b"]", media_type=_JSON, headers=headers)


def _require_merge_patch(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != MERGE_PATCH:
        raise UnsupportedMediaTypeError(
            f"PATCH bodies must be {MERGE_PATCH}; got {content_type or 'none'}"
        )


def _versions(uri_prefix: str) -> bytes:
    versions = APIVersions(uri_prefix=uri_prefix, api_versions=[APIVersion(version=API_VERSION)])
    return versions.model_dump_json(by_alias=True, exclude_none=True).encode()


_ALL_VERSIONS = _versions(PREFIX)
_V1_VERSIONS = _versions(V1)


# -- versions ----------------------------------------------------------------------------


@router.get(
    "/api_versions",
    response_model=APIVersions,
    operation_id="getAllMonitoringVersions",
    summary="All major versions of the monitoring API",
)
async def all_versions() -> Response:
    return Response(content=_ALL_VERSIONS, media_type=_JSON)


@router.get(
    "/v1/api_versions",
    response_model=APIVersions,
    operation_id="getMinorMonitoringVersions",
    summary="The versions within monitoring API v1",
)
async def minor_versions() -> Response:
    return Response(content=_V1_VERSIONS, media_type=_JSON)


# -- alarms ------------------------------------------------------------------------------


@router.get(
    "/v1/alarms",
    response_model=list[AlarmEventRecord],
    operation_id="getAlarms",
    summary="List alarms (active, and cleared ones within the retention period)",
)
async def list_alarms(request: Request) -> Response:
    page = await _alarms(request).list(
        list_query(request.query_params), tenant=tenant_of(request.scope)
    )
    return _page(request, page)


@router.get(
    "/v1/alarms/{alarmEventRecordId}",
    response_model=AlarmEventRecord,
    responses={404: _PROBLEM},
    operation_id="getAlarm",
    summary="Get one alarm",
)
async def get_alarm(request: Request, alarmEventRecordId: str) -> Response:
    body, tag = await _alarms(request).get(
        alarmEventRecordId, field_params(request.query_params), tenant=tenant_of(request.scope)
    )
    return Response(content=body, media_type=_JSON, headers={"ETag": tag})


@router.patch(
    "/v1/alarms/{alarmEventRecordId}",
    response_model=AlarmEventRecordModifications,
    responses={404: _PROBLEM, 409: _PROBLEM, 412: _PROBLEM, 415: _PROBLEM},
    operation_id="patchAlarm",
    summary="Acknowledge an alarm, or clear a MANUAL one",
    openapi_extra=_merge_patch_body(AlarmEventRecordModifications),
)
async def patch_alarm(request: Request, alarmEventRecordId: str) -> Response:
    _require_merge_patch(request)
    answer, tag = await _alarms(request).modify(
        alarmEventRecordId,
        await request.body(),
        tenant=tenant_of(request.scope),
        if_match=request.headers.get("if-match"),
    )
    return _json(answer, headers={"ETag": tag})


# -- alarm subscriptions -----------------------------------------------------------------


@router.post(
    "/v1/alarmSubscriptions",
    status_code=201,
    response_model=AlarmSubscriptionInfo,
    operation_id="createAlarmSubscription",
    summary="Subscribe a callback to alarm events",
)
async def create_subscription(request: Request, body: AlarmSubscriptionCreate) -> Response:
    created = await _subscriptions(request).create(body, tenant=tenant_of(request.scope))
    return _json(created, status=201)


@router.get(
    "/v1/alarmSubscriptions",
    response_model=list[AlarmSubscriptionInfo],
    operation_id="getAlarmSubscriptions",
    summary="List alarm subscriptions",
)
async def list_subscriptions(request: Request) -> Response:
    page = await _subscriptions(request).list(
        list_query(request.query_params), tenant=tenant_of(request.scope)
    )
    return _page(request, page)


@router.get(
    "/v1/alarmSubscriptions/{alarmSubscriptionId}",
    response_model=AlarmSubscriptionInfo,
    responses={404: _PROBLEM},
    operation_id="getAlarmSubscription",
    summary="Get one alarm subscription",
)
async def get_subscription(request: Request, alarmSubscriptionId: str) -> Response:
    body = await _subscriptions(request).get(
        alarmSubscriptionId, field_params(request.query_params), tenant=tenant_of(request.scope)
    )
    return Response(content=body, media_type=_JSON)


@router.delete(
    "/v1/alarmSubscriptions/{alarmSubscriptionId}",
    status_code=200,
    responses={404: _PROBLEM},
    operation_id="deleteAlarmSubscription",
    summary="Delete an alarm subscription (its pending notifications are dropped)",
)
async def delete_subscription(request: Request, alarmSubscriptionId: str) -> Response:
    await _subscriptions(request).delete(alarmSubscriptionId, tenant=tenant_of(request.scope))
    return Response(status_code=200)


# -- alarm service configuration ---------------------------------------------------------


def _configuration_response(configuration: AlarmServiceConfiguration, revision: int) -> Response:
    data = configuration.model_dump(mode="json", by_alias=True)
    return _json(data, headers={"ETag": etag(revision)})


@router.get(
    "/v1/alarmServiceConfiguration",
    response_model=AlarmServiceConfiguration,
    operation_id="getAlarmServiceConfiguration",
    summary="The alarm service configuration (retention period of cleared alarms)",
)
async def get_configuration(request: Request) -> Response:
    return _configuration_response(*await _configuration(request).get())


@router.put(
    "/v1/alarmServiceConfiguration",
    response_model=AlarmServiceConfiguration,
    responses={412: _PROBLEM},
    operation_id="updateAlarmServiceConfiguration",
    summary="Replace the alarm service configuration",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                _JSON: {"schema": {"$ref": "#/components/schemas/AlarmServiceConfiguration"}}
            },
        }
    },
)
async def put_configuration(request: Request) -> Response:
    result = await _configuration(request).replace(
        await request.body(), if_match=request.headers.get("if-match")
    )
    return _configuration_response(*result)


@router.patch(
    "/v1/alarmServiceConfiguration",
    response_model=AlarmServiceConfiguration,
    responses={412: _PROBLEM, 415: _PROBLEM},
    operation_id="patchAlarmServiceConfiguration",
    summary="Change fields of the alarm service configuration (JSON merge patch)",
    openapi_extra=_merge_patch_body(AlarmServiceConfigurationPatch),
)
async def patch_configuration(request: Request) -> Response:
    _require_merge_patch(request)
    result = await _configuration(request).patch(
        await request.body(), if_match=request.headers.get("if-match")
    )
    return _configuration_response(*result)


# -- probable causes (the early-2025 edition) --------------------------------------------


@router.get(
    "/v1/probableCauses",
    response_model=list[ProbableCause],
    operation_id="getProbableCauses",
    summary="List the probable causes of the alarm definitions",
)
async def list_probable_causes(request: Request) -> Response:
    page = _dictionaries(request.app.state).list_probable_causes(list_query(request.query_params))
    return _page(request, page)


@router.get(
    "/v1/probableCauses/{probableCauseId}",
    response_model=ProbableCause,
    responses={404: _PROBLEM},
    operation_id="getProbableCause",
    summary="Get one probable cause",
)
async def get_probable_cause(request: Request, probableCauseId: str) -> Response:
    body = _dictionaries(request.app.state).get_probable_cause(
        probableCauseId, field_params(request.query_params)
    )
    return Response(content=body, media_type=_JSON)


# -- alarm dictionaries on the inventory surface (lean routes) ---------------------------

_INVENTORY_V1 = "/o2ims-infrastructureInventory/v1"
_INVENTORY_TAG = "O2-IMS infrastructure inventory"


async def _list_dictionaries(request: LeanRequest) -> LeanResponse:
    page = _dictionaries(request.state).list_dictionaries(list_query(request.query))
    headers = [("X-Total-Count", str(page.total))]
    if page.next_marker is not None:
        next_url = request.url_with(nextpage_opaque_marker=page.next_marker)
        headers.append(("Link", f'<{next_url}>; rel="next"'))
    return LeanResponse(body=b"[" + page.items + b"]", headers=headers)


async def _get_dictionary(request: LeanRequest) -> LeanResponse:
    body = _dictionaries(request.state).get_dictionary(
        request.path_params["alarmDictionaryId"], field_params(request.query)
    )
    return LeanResponse(body=body)


async def _dictionary_of_type(request: LeanRequest) -> LeanResponse:
    body = _dictionaries(request.state).dictionary_of_type(
        request.path_params["resourceTypeId"], field_params(request.query)
    )
    return LeanResponse(body=body)


def _lean(
    path: str, handler: LeanHandler, operation_id: str, summary: str, **extra: Any
) -> LeanRoute:
    return LeanRoute(
        path=path,
        handler=handler,
        operation_id=operation_id,
        summary=summary,
        model=AlarmDictionary,
        tag=_INVENTORY_TAG,
        **extra,
    )


INVENTORY_ROUTES: list[LeanRoute] = [
    _lean(
        f"{_INVENTORY_V1}/alarmDictionaries",
        _list_dictionaries,
        "getAlarmDictionaries",
        "List the alarm dictionaries",
        many=True,
        query="list",
    ),
    _lean(
        f"{_INVENTORY_V1}/alarmDictionaries/{{alarmDictionaryId}}",
        _get_dictionary,
        "getAlarmDictionary",
        "Get one alarm dictionary",
        query="fields",
        not_found=True,
    ),
    _lean(
        f"{_INVENTORY_V1}/resourceTypes/{{resourceTypeId}}/alarmDictionary",
        _dictionary_of_type,
        "getResourceTypeAlarmDictionary",
        "Get the alarm dictionary of a resource type",
        query="fields",
        not_found=True,
    ),
]
