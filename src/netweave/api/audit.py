"""The audit trail query API: ``GET /o2ims/v1/audit/events``.

The authentication middleware has checked ``audit:read`` before this router runs; what is
left here is tenant scoping: a principal with a tenant reads only that tenant's records,
whatever its filter asks for.  ``since`` and ``until`` (ISO 8601; a time without a zone is
UTC) bound the scan to ``since <= time < until``; with ``filter``, the field selectors and
``nextpage_opaque_marker`` the answer is ``{"items": [...], "nextMarker": ...}``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.responses import Response

from netweave.api.params import list_query
from netweave.errors import InvalidQueryError
from netweave.models.common import ProblemDetails, WireModel
from netweave.security.audit import AuditRecord, AuditTrail
from netweave.security.principal import Principal

__all__ = ["PREFIX", "AuditEventList", "router"]

PREFIX = "/o2ims/v1/audit"
_PROBLEM = {"model": ProblemDetails, "content": {"application/problem+json": {}}}

router = APIRouter(
    prefix=PREFIX,
    tags=["Gateway audit trail"],
    responses={400: _PROBLEM, 401: _PROBLEM, 403: _PROBLEM, 503: _PROBLEM},
)


class AuditEventList(WireModel):
    """One page of audit records (documentation of the answer's shape)."""

    items: list[AuditRecord]
    next_marker: str | None = Field(
        default=None, description="nextpage_opaque_marker of the next page"
    )


@router.get(
    "/events",
    response_model=AuditEventList,
    operation_id="getAuditEvents",
    summary="List audit records, oldest first (platform admins: all; tenant admins: own tenant)",
)
async def list_audit_events(
    request: Request,
    since: str | None = Query(default=None, description="ISO 8601 time, inclusive"),
    until: str | None = Query(default=None, description="ISO 8601 time, exclusive"),
) -> Response:
    start = _instant("since", since)
    end = _instant("until", until)
    if start is not None and end is not None and end <= start:
        raise InvalidQueryError("until must be later than since", parameter="until")
    principal: Principal | None = request.scope.get("netweave.principal")
    trail: AuditTrail = request.app.state.audit
    page = await trail.list(
        list_query(request.query_params),
        tenant=None if principal is None else principal.tenant,
        since=start,
        until=end,
    )
    body = b'{"items":[' + page.items + b'],"nextMarker":' + orjson.dumps(page.next_marker) + b"}"
    return Response(content=body, media_type="application/json")


def _instant(name: str, value: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 query parameter; 400 naming it when it is not one."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidQueryError(
            f"{name} must be an ISO 8601 time such as 2024-05-01T12:00:00Z (got {value!r})",
            parameter=name,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
