"""AuditTrail: the log line always, the store when it can, retention, the scan cap."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs
from tests.audit.records import BASE, FakeClock, make_record
from tests.redisserver import redis_server

from netweave.errors import InvalidRequestError
from netweave.query import PageMarkers
from netweave.query.listing import ListQuery
from netweave.security.audit import AuditLog, AuditTrail
from netweave.store.audit import InMemoryAuditLog, RedisAuditLog

MARKERS = PageMarkers(b"audit-test-secret")


def trail_of(
    log: AuditLog,
    clock: FakeClock,
    *,
    retention: float = 3600.0,
    prune_interval: float = 60.0,
    max_scan: int = 50_000,
) -> AuditTrail:
    return AuditTrail(
        log,
        retention=retention,
        markers=MARKERS,
        page_size=100,
        max_scan=max_scan,
        prune_interval=prune_interval,
        clock=clock,
    )


async def stored(log: AuditLog) -> list[str]:
    return [r.event_id for r in await log.query(tenant=None, since=None, until=None, limit=1000)]


async def test_record_writes_one_log_line_with_every_field_then_stores(
    audit_log: AuditLog, clock: FakeClock
) -> None:
    trail = trail_of(audit_log, clock)
    record = make_record(0.0, tenant="smo-a", outcome="denied", status=403)

    with capture_logs() as logs:
        await trail.record(record)

    lines = [line for line in logs if line["event"] == "audit"]
    assert len(lines) == 1
    line = lines[0]
    assert line["log_level"] == "info"
    assert {key: line[key] for key in record.wire()} == record.wire()
    assert not [line for line in logs if line["log_level"] == "error"]
    assert await stored(audit_log) == [record.event_id]


async def test_record_with_redis_stopped_logs_the_line_and_an_error_and_never_raises(
    tmp_path: Path, clock: FakeClock
) -> None:
    with redis_server(tmp_path / "redis") as server:
        client = Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        trail = trail_of(RedisAuditLog(client, prefix="down"), clock)
        server.stop()
        record = make_record(0.0, tenant="smo-a")
        try:
            with capture_logs() as logs:
                await trail.record(record)  # must not raise
        finally:
            await client.aclose()

    assert [line["event"] for line in logs] == [
        "audit",
        "audit record not stored; the log line above is its only copy",
    ]
    audit_line, error_line = logs
    assert audit_line["eventId"] == record.event_id
    assert audit_line["tenantId"] == "smo-a"
    assert error_line["log_level"] == "error"
    assert error_line["audit_event_id"] == record.event_id
    assert "Redis" in error_line["error"]


async def test_queries_never_return_expired_records_and_appends_prune_them(
    audit_log: AuditLog, clock: FakeClock
) -> None:
    trail = trail_of(audit_log, clock, retention=100.0, prune_interval=1000.0)
    old = make_record(0.0)
    await trail.record(old)  # the first append prunes (nothing yet)
    clock.advance(150.0)
    fresh = make_record(150.0)
    await audit_log.append(fresh)  # behind the trail's back: no pruning

    page = await trail.list(ListQuery(), tenant=None)

    assert [item["eventId"] for item in orjson.loads(b"[" + page.items + b"]")] == [fresh.event_id]
    assert await stored(audit_log) == [old.event_id, fresh.event_id]  # not pruned yet

    clock.advance(1000.0)
    newest = make_record(1150.0)
    await trail.record(newest)  # the prune interval has passed: this append prunes
    assert await stored(audit_log) == [newest.event_id]


async def test_pruning_runs_at_most_once_per_interval(
    audit_log: AuditLog, clock: FakeClock
) -> None:
    trail = trail_of(audit_log, clock, retention=100.0, prune_interval=60.0)
    first_stale = make_record(-200.0)
    await trail.record(first_stale)  # prunes at once: it is older than the retention
    assert await stored(audit_log) == []

    clock.advance(30.0)
    second_stale = make_record(-200.0)
    await trail.record(second_stale)  # within the interval: no pruning
    assert await stored(audit_log) == [second_stale.event_id]

    clock.advance(31.0)
    current = make_record(61.0)
    await trail.record(current)
    assert await stored(audit_log) == [current.event_id]


async def test_a_window_beyond_the_scan_cap_is_refused_until_narrowed(
    audit_log: AuditLog, clock: FakeClock
) -> None:
    trail = trail_of(audit_log, clock, max_scan=3)
    records = [make_record(float(i)) for i in range(5)]
    for record in records:
        await audit_log.append(record)

    with pytest.raises(InvalidRequestError, match="narrow it with since and until"):
        await trail.list(ListQuery(), tenant=None)

    page = await trail.list(ListQuery(), tenant=None, since=records[2].millis / 1000)
    assert page.count == 3


def test_trail_refuses_nonsense_settings() -> None:
    log = InMemoryAuditLog()
    with pytest.raises(ValueError, match="retention"):
        AuditTrail(log, retention=0, markers=MARKERS, page_size=10)
    with pytest.raises(ValueError, match="page_size"):
        AuditTrail(log, retention=10, markers=MARKERS, page_size=0)


async def test_audit_lines_are_written_even_when_the_log_level_hides_info(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from netweave.observability.logging import configure_logging

    configure_logging(level="error")
    try:
        trail = trail_of(InMemoryAuditLog(), FakeClock(BASE))
        await trail.record(make_record(1.0, action="tenants:create"))
        from netweave.observability.logging import get_logger

        get_logger("netweave.elsewhere").info("hidden at level error")
        await asyncio.sleep(0)  # the log writer flushes at the end of the loop iteration
        lines = [orjson.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    finally:
        configure_logging(level="info")
    assert [line["action"] for line in lines if line.get("event") == "audit"] == ["tenants:create"]
    assert not any(line.get("event") == "hidden at level error" for line in lines)
