"""The tenancy store contract: every test runs against the in-memory and the Redis store."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from tests.redisserver import free_port
from tests.tenancy.conftest import StoreFactory
from tests.tenancy.records import binding, tenant, user

from netweave.errors import BackendUnavailableError, ConflictError, NotFoundError
from netweave.security.tenancy import Quotas, TenancyStore, Tenant
from netweave.store.tenants import RedisTenancyStore


async def test_tenants_are_created_read_listed_in_id_order_and_refused_twice(
    store: TenancyStore,
) -> None:
    b = tenant("smo-b", quotas=Quotas(max_subscriptions=3, requests_per_second=2.5))
    await store.create_tenant(b)
    await store.create_tenant(tenant("smo-a"))
    assert await store.get_tenant("smo-b") == b
    assert await store.get_tenant("smo-c") is None
    assert [t.tenant_id for t in await store.list_tenants()] == ["smo-a", "smo-b"]
    with pytest.raises(ConflictError):
        await store.create_tenant(tenant("smo-b", name="another"))
    assert await store.get_tenant("smo-b") == b


async def test_update_tenant_applies_the_change_and_writes_nothing_when_it_changes_nothing(
    store: TenancyStore,
) -> None:
    await store.create_tenant(tenant("smo-a"))
    before = await store.generation()
    updated = await store.update_tenant(
        "smo-a", lambda t: t.model_copy(update={"status": "suspended"})
    )
    assert updated is not None and updated.status == "suspended"
    assert await store.get_tenant("smo-a") == updated
    assert await store.generation() > before
    settled = await store.generation()
    assert await store.update_tenant("smo-a", lambda t: t) == updated
    assert await store.generation() == settled
    assert await store.update_tenant("smo-x", lambda t: t) is None


async def test_update_tenant_that_raises_or_changes_the_id_changes_nothing(
    store: TenancyStore,
) -> None:
    original = tenant("smo-a")
    await store.create_tenant(original)
    before = await store.generation()

    def refuse(current: Tenant) -> Tenant:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await store.update_tenant("smo-a", refuse)
    with pytest.raises(ValueError, match="id"):
        await store.update_tenant("smo-a", lambda t: t.model_copy(update={"tenant_id": "smo-z"}))
    assert await store.list_tenants() == [original]
    assert await store.generation() == before


async def test_users_are_unique_by_subject_across_tenants(store: TenancyStore) -> None:
    await store.create_tenant(tenant("smo-a"))
    await store.create_tenant(tenant("smo-b"))
    alice = user("smo-a", "spiffe://smo-a.example/o2ims", name="A client")
    await store.create_user(alice)
    assert await store.get_user(alice.user_id) == alice
    assert await store.user_by_subject(alice.subject) == alice
    assert await store.user_by_subject("nobody") is None
    with pytest.raises(ConflictError) as refused:
        await store.create_user(user("smo-b", alice.subject))
    assert "smo-a" not in refused.value.detail  # the other tenant is not named
    with pytest.raises(NotFoundError):
        await store.create_user(user("smo-x", "someone"))
    assert await store.list_users("smo-a") == [alice]
    assert await store.list_users("smo-b") == []


async def test_users_of_a_tenant_are_listed_in_id_order(store: TenancyStore) -> None:
    await store.create_tenant(tenant("smo-a"))
    await store.create_tenant(tenant("smo-b"))
    mine = [user("smo-a", f"a{i}") for i in range(5)]
    for record in [*mine, user("smo-b", "b0")]:
        await store.create_user(record)
    assert await store.list_users("smo-a") == sorted(mine, key=lambda u: u.user_id)


async def test_deleting_a_user_frees_its_subject(store: TenancyStore) -> None:
    await store.create_tenant(tenant("smo-a"))
    await store.create_tenant(tenant("smo-b"))
    # a subject DN with non-ASCII and a control character: the Redis scripts decode JSON
    first = user("smo-a", "CN=Jörg Müller,O=Ex\u0001ample")
    await store.create_user(first)
    assert await store.delete_user(first.user_id) is True
    assert await store.delete_user(first.user_id) is False
    assert await store.get_user(first.user_id) is None
    again = user("smo-b", first.subject)
    await store.create_user(again)
    assert await store.user_by_subject(first.subject) == again


async def test_put_user_creates_then_moves_and_renames_keeping_the_id(
    store: TenancyStore,
) -> None:
    await store.create_tenant(tenant("smo-a"))
    await store.create_tenant(tenant("smo-b"))
    created = await store.put_user(user("smo-a", "ops@example.net", name="Ops"))
    assert await store.user_by_subject("ops@example.net") == created
    settled = await store.generation()
    assert await store.put_user(user("smo-a", "ops@example.net", name="Ops")) == created
    assert await store.generation() == settled
    moved = await store.put_user(user("smo-b", "ops@example.net", name="Ops B"))
    assert (moved.user_id, moved.created_at) == (created.user_id, created.created_at)
    assert (moved.tenant_id, moved.name) == ("smo-b", "Ops B")
    assert await store.list_users("smo-a") == []
    assert await store.list_users("smo-b") == [moved]
    with pytest.raises(NotFoundError):
        await store.put_user(user("smo-x", "ops@example.net"))
    assert await store.get_user(created.user_id) == moved


async def test_role_bindings_are_unique_by_subject_role_and_tenant(store: TenancyStore) -> None:
    await store.create_tenant(tenant("smo-a"))
    await store.create_tenant(tenant("smo-b"))
    admin_a = binding("alice", "tenant-admin", "smo-a")
    platform = binding("alice", "platform-admin")
    await store.create_binding(admin_a)
    await store.create_binding(platform)
    await store.create_binding(binding("alice", "tenant-admin", "smo-b"))
    await store.create_binding(binding("alice", "tenant-viewer", "smo-a"))
    for duplicate in (
        binding("alice", "tenant-admin", "smo-a"),
        binding("alice", "platform-admin"),
    ):
        with pytest.raises(ConflictError):
            await store.create_binding(duplicate)
    with pytest.raises(NotFoundError):
        await store.create_binding(binding("alice", "tenant-admin", "smo-x"))
    assert await store.get_binding(admin_a.role_binding_id) == admin_a
    assert await store.get_binding(platform.role_binding_id) == platform
    listed = await store.list_bindings()
    assert [b.role_binding_id for b in listed] == sorted(b.role_binding_id for b in listed)
    assert len(listed) == 4


async def test_deleting_a_binding_allows_binding_the_same_again(store: TenancyStore) -> None:
    await store.create_tenant(tenant("smo-a"))
    for tenant_id, role in (("smo-a", "tenant-operator"), (None, "viewer")):
        first = binding("CN=Jörg,O=Ex", role, tenant_id)
        await store.create_binding(first)
        assert await store.delete_binding(first.role_binding_id) is True
        assert await store.delete_binding(first.role_binding_id) is False
        assert await store.get_binding(first.role_binding_id) is None
        await store.create_binding(binding("CN=Jörg,O=Ex", role, tenant_id))


async def test_deleting_a_tenant_deletes_its_users_and_bindings_only(store: TenancyStore) -> None:
    await store.create_tenant(tenant("smo-a"))
    await store.create_tenant(tenant("smo-b"))
    gone_user = user("smo-a", "CN=a,O=Ä")
    kept_user = user("smo-b", "b")
    await store.create_user(gone_user)
    await store.create_user(kept_user)
    kept = [binding("CN=a,O=Ä", "platform-admin"), binding("b", "tenant-viewer", "smo-b")]
    for record in [binding("CN=a,O=Ä", "tenant-admin", "smo-a"), *kept]:
        await store.create_binding(record)
    assert await store.delete_tenant("smo-a") is True
    assert await store.delete_tenant("smo-a") is False
    assert await store.get_tenant("smo-a") is None
    assert await store.get_user(gone_user.user_id) is None
    assert await store.list_bindings() == sorted(kept, key=lambda b: b.role_binding_id)
    snapshot = await store.snapshot()
    assert snapshot.users == (kept_user,)
    # the uniqueness indexes were cleaned up with the records
    await store.create_tenant(tenant("smo-a"))
    await store.create_user(user("smo-a", gone_user.subject))
    await store.create_binding(binding("CN=a,O=Ä", "tenant-admin", "smo-a"))


async def test_every_change_moves_the_generation_and_refusals_do_not(
    store: TenancyStore,
) -> None:
    generations = [await store.generation()]

    async def changed() -> None:
        generations.append(await store.generation())
        assert generations[-1] != generations[-2]

    await store.create_tenant(tenant("smo-a"))
    await changed()
    await store.update_tenant("smo-a", lambda t: t.model_copy(update={"name": "A"}))
    await changed()
    alice = user("smo-a", "alice")
    await store.create_user(alice)
    await changed()
    await store.put_user(user("smo-a", "alice", name="Alice"))
    await changed()
    grant = binding("alice", "tenant-admin", "smo-a")
    await store.create_binding(grant)
    await changed()
    with pytest.raises(ConflictError):
        await store.create_binding(grant)
    with pytest.raises(ConflictError):
        await store.create_tenant(tenant("smo-a"))
    assert await store.delete_user("no-such-user") is False
    assert await store.generation() == generations[-1]
    await store.delete_binding(grant.role_binding_id)
    await changed()
    await store.delete_user(alice.user_id)
    await changed()
    await store.delete_tenant("smo-a")
    await changed()


async def test_snapshot_holds_everything_at_the_current_generation(store: TenancyStore) -> None:
    empty = await store.snapshot()
    assert (empty.tenants, empty.users, empty.bindings) == ((), (), ())
    await store.create_tenant(tenant("smo-b"))
    await store.create_tenant(tenant("smo-a"))
    users = [user("smo-a", f"u{i}") for i in range(3)]
    for record in users:
        await store.create_user(record)
    grant = binding("u0", "tenant-viewer", "smo-a")
    await store.create_binding(grant)
    snapshot = await store.snapshot()
    assert snapshot.generation == await store.generation()
    assert [t.tenant_id for t in snapshot.tenants] == ["smo-a", "smo-b"]
    assert snapshot.users == tuple(sorted(users, key=lambda u: u.user_id))
    assert snapshot.bindings == (grant,)


# -- replicas racing ------------------------------------------------------------------------


async def test_replicas_racing_to_create_one_tenant_have_one_winner(
    make_store: StoreFactory,
) -> None:
    one, two = make_store(), make_store()
    outcomes = await asyncio.gather(
        one.create_tenant(tenant("smo-a", name="one")),
        two.create_tenant(tenant("smo-a", name="two")),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["ConflictError", "NoneType"]
    winner = "one" if outcomes[0] is None else "two"
    assert [t.name for t in await one.list_tenants()] == [winner]


async def test_replicas_racing_to_add_one_subject_have_one_winner(
    make_store: StoreFactory,
) -> None:
    one, two = make_store(), make_store()
    await one.create_tenant(tenant("smo-a"))
    await one.create_tenant(tenant("smo-b"))
    outcomes = await asyncio.gather(
        one.create_user(user("smo-a", "spiffe://x/y")),
        two.create_user(user("smo-b", "spiffe://x/y")),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["ConflictError", "NoneType"]
    snapshot = await two.snapshot()
    assert [u.subject for u in snapshot.users] == ["spiffe://x/y"]


async def test_replicas_racing_to_bind_the_same_role_have_one_winner(
    make_store: StoreFactory,
) -> None:
    one, two = make_store(), make_store()
    await one.create_tenant(tenant("smo-a"))
    outcomes = await asyncio.gather(
        one.create_binding(binding("alice", "tenant-admin", "smo-a")),
        two.create_binding(binding("alice", "tenant-admin", "smo-a")),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["ConflictError", "NoneType"]
    assert len(await two.list_bindings()) == 1


async def test_concurrent_updates_on_replicas_lose_no_change(make_store: StoreFactory) -> None:
    replicas = [make_store() for _ in range(3)]
    await replicas[0].create_tenant(tenant("smo-a", quotas=Quotas(max_subscriptions=0)))

    def one_more(current: Tenant) -> Tenant:
        count = (current.quotas.max_subscriptions or 0) + 1
        quotas = current.quotas.model_copy(update={"max_subscriptions": count})
        return current.model_copy(update={"quotas": quotas})

    await asyncio.gather(*(replicas[i % 3].update_tenant("smo-a", one_more) for i in range(12)))
    updated = await replicas[1].get_tenant("smo-a")
    assert updated is not None and updated.quotas.max_subscriptions == 12


async def test_a_tenant_deleted_while_a_user_is_added_leaves_no_orphan(
    make_store: StoreFactory,
) -> None:
    one, two = make_store(), make_store()
    for _ in range(5):
        await one.create_tenant(tenant("smo-a"))
        await asyncio.gather(
            one.delete_tenant("smo-a"),
            two.create_user(user("smo-a", "alice")),
            return_exceptions=True,
        )
        snapshot = await one.snapshot()
        assert snapshot.tenants == () and snapshot.users == ()


# -- Redis only -----------------------------------------------------------------------------


async def test_redis_keys_are_under_the_prefix(redis_url: str, redis_prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        store = RedisTenancyStore(client, prefix=redis_prefix)
        await store.create_tenant(tenant("smo-a"))
        await store.create_user(user("smo-a", "alice"))
        await store.create_binding(binding("alice", "tenant-admin", "smo-a"))
        keys = sorted(await client.keys(f"{redis_prefix}:*"))
        assert keys == [
            f"{redis_prefix}:tenancy:{name}".encode()
            for name in ("binding-keys", "bindings", "generation", "subjects", "tenants", "users")
        ]
    finally:
        await client.aclose()


async def test_redis_store_works_with_decoded_responses(redis_url: str, redis_prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = RedisTenancyStore(client, prefix=redis_prefix)
        await store.create_tenant(tenant("smo-a"))
        alice = await store.put_user(user("smo-a", "alice"))
        assert await store.user_by_subject("alice") == alice
        assert [t.tenant_id for t in (await store.snapshot()).tenants] == ["smo-a"]
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.generation(),
        lambda s: s.snapshot(),
        lambda s: s.create_tenant(tenant("smo-a")),
        lambda s: s.update_tenant("smo-a", lambda t: t),
        lambda s: s.put_user(user("smo-a", "alice")),
        lambda s: s.delete_binding("b"),
    ],
    ids=["generation", "snapshot", "create_tenant", "update_tenant", "put_user", "delete_binding"],
)
async def test_an_unreachable_redis_is_backend_unavailable(call) -> None:  # type: ignore[no-untyped-def]
    client = redis.asyncio.Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        with pytest.raises(BackendUnavailableError):
            await call(RedisTenancyStore(client, prefix="unreachable"))
    finally:
        await client.aclose()


def test_a_blank_prefix_is_refused() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=free_port())
    with pytest.raises(ValueError, match="prefix"):
        RedisTenancyStore(client, prefix="has space")
