"""Responses built from pre-rendered JSON bytes."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from netweave.api.problems import PROBLEM_JSON
from netweave.inventory.service import RenderedPage
from netweave.models.common import ProblemDetails

__all__ = ["PROBLEMS", "json_bytes", "json_list"]

_JSON = "application/json"


def json_bytes(body: bytes) -> Response:
    return Response(content=body, media_type=_JSON)


def json_list(request: Request, page: RenderedPage) -> Response:
    """A bare JSON array with ``X-Total-Count`` and, when more follow, a ``Link: rel=next``."""
    headers = {"X-Total-Count": str(page.total)}
    if page.next_marker is not None:
        url = request.url.include_query_params(nextpage_opaque_marker=page.next_marker)
        headers["Link"] = f'<{url}>; rel="next"'
    return Response(content=b"[" + page.items + b"]", media_type=_JSON, headers=headers)


def _problem(description: str) -> dict[str, object]:
    return {
        "model": ProblemDetails,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }


#: the error responses every O2-IMS operation documents
PROBLEMS: dict[int | str, dict[str, object]] = {
    400: _problem("Bad request: malformed filter, field selector, marker or body."),
    500: _problem("Internal error; the body names the request id only."),
    503: _problem("The inventory view is not synchronised with the backend yet."),
}
NOT_FOUND: dict[int | str, dict[str, object]] = {404: _problem("No object with that id.")}
