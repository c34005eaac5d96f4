"""The audit trail: who changed what, who was refused, and when.

The request middleware builds one :class:`AuditRecord` per mutating request, per
authentication or authorisation failure and per admin change, and hands it to
:meth:`AuditTrail.record`.  That writes the record as a structured log line first (the
copy that survives a store outage) and then to an :class:`AuditLog` (memory or Redis, see
:mod:`netweave.store.audit`), from which :meth:`AuditTrail.list` serves
``GET /o2ims/v1/audit/events``.

Records are kept for ``retention`` seconds: older ones are pruned on append (at most once
per ``prune_interval``) and never returned by a query, pruned yet or not.  An event id
starts with its time in epoch milliseconds, so the id order is the time order and keyset
paging on the id walks the trail chronologically.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
from pydantic import Field, field_validator

from netweave.errors import InvalidRequestError
from netweave.models.common import WireModel
from netweave.observability.logging import get_unfiltered_logger
from netweave.query import PageMarkers, schema_of
from netweave.query.listing import ListQuery, RenderedPage, list_page
from netweave.security.principal import AuthMethod

__all__ = ["AuditLog", "AuditRecord", "AuditTrail", "Outcome", "event_millis"]

#: how the audited request ended: done, failed (4xx/5xx), refused (401/403)
Outcome = Literal["success", "failure", "denied"]

_DETAIL_MAX = 256
#: things that look like credentials; a detail is free text, so scrub it before storing
_SECRETISH = re.compile(
    r"(?i)\b(?:bearer|basic)\s+\S+"
    r"|\beyJ[\w-]*\.[\w-]*\.[\w-]*"
    r"|\b(?:token|access_token|password|passwd|secret|api[_-]?key|authorization)\s*[=:]\s*\S+"
)
_LISTING = "audit/events"


class AuditRecord(WireModel):
    """One audit event, as stored, logged and served (camelCase on the wire)."""

    event_id: str = Field(pattern=r"^\d{13}-[0-9a-f]{12}$")
    time: str
    request_id: str | None = None
    principal: str = "anonymous"
    auth_methods: list[AuthMethod] = Field(default_factory=list)
    tenant_id: str | None = None
    action: str
    method: str
    target: str
    outcome: Outcome
    status: int
    source_address: str | None = None
    detail: str | None = None

    @field_validator("detail")
    @classmethod
    def _scrub(cls, value: str | None) -> str | None:
        """Short, and with anything credential-shaped redacted: records outlive requests."""
        if value is None:
            return None
        value = _SECRETISH.sub("[redacted]", value)
        return value if len(value) <= _DETAIL_MAX else value[: _DETAIL_MAX - 3] + "..."

    @classmethod
    def new(
        cls,
        *,
        action: str,
        method: str,
        target: str,
        outcome: Outcome,
        status: int,
        request_id: str | None = None,
        principal: str = "anonymous",
        auth_methods: Iterable[AuthMethod] = (),
        tenant_id: str | None = None,
        source_address: str | None = None,
        detail: str | None = None,
        at: float | None = None,
    ) -> AuditRecord:
        """A record of now (or of ``at``, epoch seconds) with a fresh, time-ordered event id."""
        millis = round((time.time() if at is None else at) * 1000)
        stamp = datetime.fromtimestamp(millis // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return cls(
            event_id=f"{millis:013d}-{secrets.token_hex(6)}",
            time=f"{stamp}.{millis % 1000:03d}Z",
            request_id=request_id,
            principal=principal,
            auth_methods=sorted(set(auth_methods)),
            tenant_id=tenant_id,
            action=action,
            method=method,
            target=target,
            outcome=outcome,
            status=status,
            source_address=source_address,
            detail=detail,
        )

    @property
    def millis(self) -> int:
        """When it happened, epoch milliseconds (the event id's prefix)."""
        return event_millis(self.event_id)

    def wire(self) -> dict[str, Any]:
        """The JSON object of the record (``null`` fields included: they can be filtered)."""
        return self.model_dump(mode="json", by_alias=True)


def event_millis(event_id: str) -> int:
    """The epoch milliseconds an event id starts with."""
    return int(event_id[:13])


class AuditLog(Protocol):
    """Where records are kept: :mod:`netweave.store.audit` has one in memory, one in Redis."""

    async def append(self, record: AuditRecord) -> None: ...

    async def query(
        self, *, tenant: str | None, since: float | None, until: float | None, limit: int
    ) -> list[AuditRecord]:
        """At most ``limit`` records with ``since <= time < until`` (epoch seconds, None:
        unbounded), ascending by event id; ``tenant=None`` means every tenant's and none."""
        ...

    async def prune(self, before: float) -> int:
        """Remove the records older than ``before`` (epoch seconds); how many went."""
        ...


class _Listed:
    """A record as :func:`render_page` wants it (id, wire dict, JSON bytes)."""

    __slots__ = ("object_id", "raw", "wire")

    def __init__(self, record: AuditRecord) -> None:
        self.object_id = record.event_id
        self.wire = record.wire()
        self.raw = orjson.dumps(self.wire)


_SCHEMA = schema_of(AuditRecord)


class AuditTrail:
    """Writes audit records (log line, then store) and serves queries over them.

    ``max_scan`` caps the records one query reads from the store (filters are applied
    after reading); a time window holding more is refused with 400 so the caller narrows
    ``since``/``until``.  ``clock`` is epoch seconds, injectable for retention tests.
    """

    def __init__(
        self,
        log: AuditLog,
        *,
        retention: float,
        markers: PageMarkers,
        page_size: int,
        max_scan: int = 50_000,
        prune_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention <= 0:
            raise ValueError("retention must be positive")
        if page_size <= 0 or max_scan <= 0:
            raise ValueError("page_size and max_scan must be positive")
        self._store = log
        self._retention = retention
        self._markers = markers
        self._page_size = page_size
        self._max_scan = max_scan
        self._prune_interval = prune_interval
        self._clock = clock
        self._next_prune = float("-inf")
        self._logger = get_unfiltered_logger("netweave.audit")

    async def record(self, record: AuditRecord) -> None:
        """Log the record, then store it; never raises (the request is answered already)."""
        self._logger.info("audit", **record.wire())
        try:
            await self._store.append(record)
        except Exception as exc:
            self._logger.error(
                "audit record not stored; the log line above is its only copy",
                audit_event_id=record.event_id,
                error=_describe(exc),
            )
            return
        await self._maybe_prune()

    async def _maybe_prune(self) -> None:
        now = self._clock()
        if now < self._next_prune:
            return
        self._next_prune = now + self._prune_interval  # before the await: one pruner at a time
        try:
            removed = await self._store.prune(now - self._retention)
        except Exception as exc:
            self._logger.warning("audit pruning failed", error=_describe(exc))
            return
        if removed:
            self._logger.debug("audit records pruned", removed=removed)

    async def list(
        self,
        query: ListQuery,
        *,
        tenant: str | None,
        since: float | None = None,
        until: float | None = None,
    ) -> RenderedPage:
        """One page of records in ``[since, until)``, of ``tenant`` only unless it is None.

        The paging marker is bound to the tenant and the window as well as to the query,
        and its event id moves the start of the scan, so later pages read no earlier
        records.
        """
        window = f"{tenant or ''}|{_text(since)}|{_text(until)}"
        scope = query.scope(_LISTING, parent=window)
        start = self._clock() - self._retention
        if since is not None:
            start = max(start, since)
        if query.marker is not None:
            after = self._markers.verify(query.marker, scope=scope)
            start = max(start, event_millis(after) / 1000)
        records = await self._store.query(
            tenant=tenant, since=start, until=until, limit=self._max_scan + 1
        )
        if len(records) > self._max_scan:
            raise InvalidRequestError(
                f"more than {self._max_scan} audit records fall in the requested time window; "
                "narrow it with since and until"
            )
        return list_page(
            [_Listed(record) for record in records],
            query,
            schema=_SCHEMA,
            markers=self._markers,
            scope=scope,
            page_size=self._page_size,
        )


def _text(instant: float | None) -> str:
    return "" if instant is None else repr(instant)


def _describe(exc: Exception) -> str:
    """What went wrong, for the log: the O2Error detail or the exception's class and text."""
    detail = getattr(exc, "detail", None)
    return detail if isinstance(detail, str) else f"{type(exc).__name__}: {exc}"
