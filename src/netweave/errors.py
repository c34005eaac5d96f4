"""The error tree of netweave.

Everything the gateway reports to a client is an :class:`O2Error`; one handler in
``netweave.api.problems`` renders it as an RFC 7807 ProblemDetails body::

    O2Error (status, title)
    ├── InvalidRequestError        400  bad body, parameter or query
    │   └── InvalidQueryError      400  bad filter, field selector or paging marker
    ├── UnauthenticatedError       401
    ├── ForbiddenError             403
    ├── NotFoundError              404  unknown id or path
    ├── MethodNotAllowedError      405  carries the ``Allow`` header
    ├── ConflictError              409
    ├── PayloadTooLargeError       413
    ├── UnsupportedMediaTypeError  415
    ├── TooManyRequestsError       429  carries ``Retry-After``
    ├── InternalError              500  never carries internals in its detail
    ├── NotSupportedError          501
    ├── BackendError               502
    └── BackendUnavailableError    503  carries ``Retry-After``

Routers and services raise these and never ``HTTPException``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConflictError",
    "ForbiddenError",
    "InternalError",
    "InvalidQueryError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "NotFoundError",
    "NotSupportedError",
    "O2Error",
    "PayloadTooLargeError",
    "TooManyRequestsError",
    "UnauthenticatedError",
    "UnsupportedMediaTypeError",
]


class O2Error(Exception):
    """An error that is reported to the client as ProblemDetails."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})
        self.attributes: dict[str, str] = dict(attributes or {})


class InvalidRequestError(O2Error):
    status = 400
    title = "Bad Request"


class InvalidQueryError(InvalidRequestError):
    """A query parameter (filter, fields, paging marker) is malformed or names an unknown attribute.

    ``parameter`` names the query parameter and ``position`` (0-based, optional) the
    offending character in it.
    """

    def __init__(self, detail: str, *, parameter: str, position: int | None = None) -> None:
        attributes = {"parameter": parameter}
        if position is not None:
            attributes["position"] = str(position)
        super().__init__(detail, attributes=attributes)
        self.parameter = parameter
        self.position = position


class UnauthenticatedError(O2Error):
    status = 401
    title = "Unauthorized"


class ForbiddenError(O2Error):
    status = 403
    title = "Forbidden"


class NotFoundError(O2Error):
    status = 404
    title = "Not Found"


class MethodNotAllowedError(O2Error):
    status = 405
    title = "Method Not Allowed"

    def __init__(self, detail: str, *, allow: list[str]) -> None:
        super().__init__(detail, headers={"Allow": ", ".join(allow)})
        self.allow = allow


class ConflictError(O2Error):
    status = 409
    title = "Conflict"


class PayloadTooLargeError(O2Error):
    status = 413
    title = "Payload Too Large"


class UnsupportedMediaTypeError(O2Error):
    status = 415
    title = "Unsupported Media Type"


class TooManyRequestsError(O2Error):
    """A rate limit or quota was hit; ``retry_after`` says when to try again (seconds)."""

    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class InternalError(O2Error):
    status = 500
    title = "Internal Server Error"


class NotSupportedError(O2Error):
    status = 501
    title = "Not Implemented"


class BackendError(O2Error):
    status = 502
    title = "Bad Gateway"


class BackendUnavailableError(O2Error):
    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
