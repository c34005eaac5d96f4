"""Conditional writes: ``ETag`` on the objects the monitoring API lets clients change, and
``If-Match`` on the changes (412 Precondition Failed, as the spec lists for PATCH and PUT).

The entity tag is the object's store revision, so it changes with every write on any
replica; a client that read, decided and writes with ``If-Match`` cannot overwrite a change
it did not see.  Without ``If-Match`` the write is unconditional.
"""

from __future__ import annotations

from netweave.errors import O2Error

__all__ = ["PreconditionFailedError", "check_if_match", "etag"]


class PreconditionFailedError(O2Error):
    status = 412
    title = "Precondition Failed"


def etag(revision: int) -> str:
    return f'"{revision}"'


def check_if_match(if_match: str | None, revision: int) -> None:
    """Raise 412 unless ``if_match`` (the header, if sent) names ``revision``'s tag or ``*``."""
    if if_match is None:
        return
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" in tags or etag(revision) in tags:
        return
    raise PreconditionFailedError(
        f"If-Match {if_match.strip()} does not match the current entity tag {etag(revision)}"
    )
