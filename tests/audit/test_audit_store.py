"""The audit log contract, against memory and a real redis-server; plus each one's own rules."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from redis.asyncio import Redis
from tests.audit.records import BASE, make_record
from tests.redisserver import redis_server

from netweave.errors import BackendUnavailableError
from netweave.security.audit import AuditLog, AuditRecord
from netweave.store.audit import InMemoryAuditLog, RedisAuditLog


def ids(records: list[AuditRecord]) -> list[str]:
    return [record.event_id for record in records]


async def test_query_answers_ascending_by_event_id_whatever_the_append_order(
    audit_log: AuditLog,
) -> None:
    records = [make_record(float(i)) for i in range(20)]
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    for record in shuffled:
        await audit_log.append(record)

    found = await audit_log.query(tenant=None, since=None, until=None, limit=100)

    assert ids(found) == sorted(ids(records))
    assert found == sorted(records, key=lambda r: r.event_id)  # stored intact


async def test_records_of_one_millisecond_keep_the_event_id_order(audit_log: AuditLog) -> None:
    same = [make_record(5.0) for _ in range(10)]
    for record in reversed(same):
        await audit_log.append(record)

    found = await audit_log.query(tenant=None, since=None, until=None, limit=100)

    assert ids(found) == sorted(ids(same))


async def test_limit_keeps_the_oldest(audit_log: AuditLog) -> None:
    records = [make_record(float(i)) for i in range(10)]
    for record in records:
        await audit_log.append(record)

    found = await audit_log.query(tenant=None, since=None, until=None, limit=3)

    assert ids(found) == ids(records[:3])
    assert await audit_log.query(tenant=None, since=None, until=None, limit=0) == []


async def test_tenant_query_reads_only_that_tenants_records(audit_log: AuditLog) -> None:
    a = [make_record(float(i), tenant="smo-a") for i in range(0, 9, 3)]
    b = [make_record(float(i), tenant="smo-b") for i in range(1, 9, 3)]
    platform = [make_record(float(i)) for i in range(2, 9, 3)]
    for record in sorted(a + b + platform, key=lambda r: r.event_id):
        await audit_log.append(record)

    assert ids(await audit_log.query(tenant="smo-a", since=None, until=None, limit=100)) == ids(a)
    assert ids(await audit_log.query(tenant="smo-b", since=None, until=None, limit=100)) == ids(b)
    assert await audit_log.query(tenant="smo-c", since=None, until=None, limit=100) == []
    everything = await audit_log.query(tenant=None, since=None, until=None, limit=100)
    assert ids(everything) == sorted(ids(a + b + platform))


async def test_since_is_inclusive_and_until_exclusive(audit_log: AuditLog) -> None:
    records = [make_record(float(i), tenant="smo-a") for i in range(10)]
    for record in records:
        await audit_log.append(record)
    since = records[3].millis / 1000
    until = records[7].millis / 1000

    for tenant in (None, "smo-a"):
        window = await audit_log.query(tenant=tenant, since=since, until=until, limit=100)
        assert ids(window) == ids(records[3:7])
        tail = await audit_log.query(tenant=tenant, since=since, until=None, limit=100)
        assert ids(tail) == ids(records[3:])
        head = await audit_log.query(tenant=tenant, since=None, until=until, limit=100)
        assert ids(head) == ids(records[:7])


async def test_prune_removes_older_records_from_every_index(audit_log: AuditLog) -> None:
    records = [make_record(float(i), tenant="smo-a" if i % 2 else None) for i in range(10)]
    for record in records:
        await audit_log.append(record)

    removed = await audit_log.prune(records[4].millis / 1000)

    assert removed == 4
    assert ids(await audit_log.query(tenant=None, since=None, until=None, limit=100)) == ids(
        records[4:]
    )
    own = await audit_log.query(tenant="smo-a", since=None, until=None, limit=100)
    assert ids(own) == ids([r for r in records[4:] if r.tenant_id == "smo-a"])
    assert await audit_log.prune(records[4].millis / 1000) == 0
    assert await audit_log.prune(BASE + 100) == 6
    assert await audit_log.query(tenant="smo-a", since=None, until=None, limit=100) == []


async def test_memory_log_keeps_at_most_max_records_dropping_the_oldest() -> None:
    log = InMemoryAuditLog(max_records=3)
    records = [make_record(float(i), tenant="smo-a" if i in (0, 3) else "smo-b") for i in range(5)]
    for record in records:
        await log.append(record)

    assert len(log) == 3
    assert ids(await log.query(tenant=None, since=None, until=None, limit=10)) == ids(records[2:])
    assert ids(await log.query(tenant="smo-a", since=None, until=None, limit=10)) == ids(
        [records[3]]
    )
    assert ids(await log.query(tenant="smo-b", since=None, until=None, limit=10)) == ids(
        [records[2], records[4]]
    )


def test_memory_log_refuses_a_non_positive_bound() -> None:
    with pytest.raises(ValueError, match="max_records"):
        InMemoryAuditLog(max_records=0)


async def test_redis_log_keeps_every_key_under_prefix_audit(
    redis_client: Redis, redis_prefix: str
) -> None:
    log = RedisAuditLog(redis_client, prefix=redis_prefix)
    await log.append(make_record(1.0, tenant="smo-a"))
    await log.append(make_record(2.0))

    keys = sorted([key.decode() async for key in redis_client.scan_iter(match="*")])
    mine = [key for key in keys if key.startswith(f"{redis_prefix}:")]

    assert mine == [
        f"{redis_prefix}:audit:records",
        f"{redis_prefix}:audit:tenant:smo-a",
        f"{redis_prefix}:audit:tenants",
        f"{redis_prefix}:audit:time",
    ]
    await log.prune(BASE + 10)
    left = [key.decode() async for key in redis_client.scan_iter(match=f"{redis_prefix}:*")]
    assert left == []  # a tenant with no records left is forgotten


async def test_redis_log_prunes_more_than_one_chunk(redis_client: Redis, redis_prefix: str) -> None:
    log = RedisAuditLog(redis_client, prefix=redis_prefix)
    records = [make_record(i / 1000) for i in range(2500)]
    for record in records:
        await log.append(record)
    cut = records[2100].millis
    older = [record for record in records if record.millis < cut]

    assert len(older) >= 2000  # more than one chunk of the prune script
    assert await log.prune(cut / 1000) == len(older)
    left = await log.query(tenant=None, since=None, until=None, limit=10_000)
    assert ids(left) == sorted(ids([record for record in records if record.millis >= cut]))


async def test_redis_log_that_cannot_reach_redis_raises_backend_unavailable(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path / "redis") as server:
        client = Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        log = RedisAuditLog(client, prefix="down")
        await log.append(make_record(1.0))
        server.stop()
        try:
            with pytest.raises(BackendUnavailableError, match="Redis"):
                await log.append(make_record(2.0))
            with pytest.raises(BackendUnavailableError):
                await log.query(tenant=None, since=None, until=None, limit=10)
            with pytest.raises(BackendUnavailableError):
                await log.prune(BASE)
        finally:
            await client.aclose()


def test_event_ids_are_time_ordered_and_times_are_utc_milliseconds() -> None:
    early = AuditRecord.new(
        at=1714564800.5, action="authentication", method="GET", target="/x", outcome="denied",
        status=401,
    )  # fmt: skip
    later = AuditRecord.new(
        at=1714564800.501, action="authentication", method="GET", target="/x", outcome="denied",
        status=401,
    )  # fmt: skip

    assert re.fullmatch(r"1714564800500-[0-9a-f]{12}", early.event_id)
    assert early.time == "2024-05-01T12:00:00.500Z"
    assert later.time == "2024-05-01T12:00:00.501Z"
    assert early.event_id < later.event_id
    assert early.principal == "anonymous" and early.tenant_id is None
    assert set(early.wire()) == {
        "eventId", "time", "requestId", "principal", "authMethods", "tenantId", "action",
        "method", "target", "outcome", "status", "sourceAddress", "detail",
    }  # fmt: skip


def test_detail_never_carries_credentials_and_stays_short() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    record = AuditRecord.new(
        action="authentication",
        method="GET",
        target="/o2ims/v1/audit/events",
        outcome="denied",
        status=401,
        detail=f"bad header Authorization: Bearer {jwt}; also token={jwt} and {jwt}",
    )
    assert record.detail is not None
    assert "eyJ" not in record.detail
    assert "[redacted]" in record.detail

    long = AuditRecord.new(
        action="tenants:create", method="POST", target="/t", outcome="failure", status=400,
        detail="x" * 1000,
    )  # fmt: skip
    assert long.detail is not None and len(long.detail) == 256 and long.detail.endswith("...")
