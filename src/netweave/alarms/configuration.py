"""The alarm service configuration: how many days cleared alarms are kept.

``GET`` answers the stored configuration, or the default (``retentionPeriod`` from the
``alarm_retention_days`` setting, no extensions) until someone writes one.  ``PUT``
replaces it; ``PATCH`` is a JSON merge patch (RFC 7386: ``null`` removes a key, objects
merge).  Either way the result must be a valid configuration -- ``retentionPeriod`` an
integer of at least 1 (not a string, a float or a boolean), ``extensions`` an object,
nothing else -- or the request is 400 and nothing is written.  Writes are a
compare-and-set on the stored revision (``ETag``; ``If-Match`` gives 412), so concurrent
patches on different replicas do not lose each other's changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from netweave.alarms.preconditions import check_if_match
from netweave.errors import ConflictError, InvalidRequestError
from netweave.models.alarms import AlarmServiceConfiguration
from netweave.store.alarms import AlarmStore

__all__ = ["AlarmConfigurationService", "merge_patch"]

_CAS_ATTEMPTS = 3


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7386)."""
    if not isinstance(patch, dict):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


class AlarmConfigurationService:
    def __init__(self, store: AlarmStore, *, default_retention_days: int) -> None:
        if default_retention_days < 1:
            raise ValueError("the default retention period is at least 1 day")
        self._store = store
        self._default = AlarmServiceConfiguration(retention_period=default_retention_days)

    async def get(self) -> tuple[AlarmServiceConfiguration, int]:
        """The configuration in force and its revision (0: the default, never written)."""
        stored = await self._store.get_configuration()
        if stored.revision == 0 or not stored.data:
            return self._default, stored.revision
        return _validated(stored.data), stored.revision

    async def retention_days(self) -> int:
        configuration, _ = await self.get()
        return configuration.retention_period

    async def replace(
        self, body: bytes, *, if_match: str | None = None
    ) -> tuple[AlarmServiceConfiguration, int]:
        """PUT: ``body`` becomes the configuration."""
        configuration = _validated(_json_object(body))
        return await self._write(lambda _current: configuration, if_match)

    async def patch(
        self, body: bytes, *, if_match: str | None = None
    ) -> tuple[AlarmServiceConfiguration, int]:
        """PATCH: ``body`` (a merge patch) is applied to the configuration in force."""
        patch = _json_object(body)

        def patched(current: AlarmServiceConfiguration) -> AlarmServiceConfiguration:
            return _validated(merge_patch(_wire(current), patch))

        return await self._write(patched, if_match)

    async def _write(
        self,
        change: Callable[[AlarmServiceConfiguration], AlarmServiceConfiguration],
        if_match: str | None,
    ) -> tuple[AlarmServiceConfiguration, int]:
        for _ in range(_CAS_ATTEMPTS):
            current, revision = await self.get()
            check_if_match(if_match, revision)
            configuration = change(current)
            written = await self._store.put_configuration(
                _wire(configuration), expected_revision=revision
            )
            if written:
                return configuration, written
        raise ConflictError("the configuration kept changing while being written; try again")


def _wire(configuration: AlarmServiceConfiguration) -> dict[str, Any]:
    return configuration.model_dump(mode="json", by_alias=True)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequestError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return data


def _validated(data: Any) -> AlarmServiceConfiguration:
    try:
        return AlarmServiceConfiguration.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        parts = []
        for error in exc.errors()[:5]:
            where = "/".join(str(part) for part in error["loc"]) or "body"
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            parts.append(f"{where}: {message}")
        raise InvalidRequestError(
            "invalid alarm service configuration: " + "; ".join(parts)
        ) from None
