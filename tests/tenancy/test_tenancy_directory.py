"""The directory: lookups from a cached snapshot, refreshed only when the generation moved."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.tenancy.conftest import StoreFactory
from tests.tenancy.records import binding, tenant, user

from netweave.errors import BackendUnavailableError
from netweave.security.tenancy import Directory, Identity, TenancySnapshot, TenancyStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Counting:
    """A tenancy store that counts the directory's reads and can be made to fail."""

    def __init__(self, store: TenancyStore) -> None:
        self.store = store
        self.generations = 0
        self.snapshots = 0
        self.failing = False

    async def generation(self) -> int:
        self.generations += 1
        if self.failing:
            raise BackendUnavailableError("store unavailable: test")
        return await self.store.generation()

    async def snapshot(self) -> TenancySnapshot:
        self.snapshots += 1
        if self.failing:
            raise BackendUnavailableError("store unavailable: test")
        await asyncio.sleep(0)  # let concurrent lookups pile up behind the refresh
        return await self.store.snapshot()

    @property
    def reads(self) -> tuple[int, int]:
        return self.generations, self.snapshots

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def seeded(store: TenancyStore) -> None:
    await store.create_tenant(tenant("smo-a"))
    await store.create_tenant(tenant("smo-b"))
    await store.create_user(user("smo-a", "spiffe://smo-a.example/o2ims", name="A"))
    await store.create_user(user("smo-b", "smo-b.example.net"))
    await store.create_binding(binding("spiffe://smo-a.example/o2ims", "tenant-admin", "smo-a"))
    await store.create_binding(binding("CN=ops,O=Example", "viewer"))
    await store.create_binding(binding("smo-b.example.net", "tenant-viewer", "smo-b"))


async def test_steady_state_lookups_cost_no_store_read(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    counting = Counting(make_store())
    await seeded(counting.store)
    directory = Directory(counting, refresh_interval=1.0, clock=clock)
    await directory.identity(["spiffe://smo-a.example/o2ims"])
    assert counting.reads == (0, 1)
    for _ in range(50):
        await directory.identity(["spiffe://smo-a.example/o2ims"])
        await directory.tenant("smo-a")
        clock.advance(0.01)
    assert counting.reads == (0, 1)
    clock.advance(1.0)
    await directory.tenant("smo-a")
    await directory.tenant("smo-a")
    assert counting.reads == (1, 1)  # generation checked once, unchanged: no reload


async def test_another_replicas_change_is_seen_after_the_refresh_interval(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    mine, other = Counting(make_store()), make_store()
    await seeded(other)
    directory = Directory(mine, refresh_interval=2.0, clock=clock)
    assert await directory.tenant("smo-c") is None
    await other.create_tenant(tenant("smo-c"))
    clock.advance(1.9)
    assert await directory.tenant("smo-c") is None  # still the cached copy
    clock.advance(0.1)
    found = await directory.tenant("smo-c")
    assert found is not None and found.tenant_id == "smo-c"
    assert mine.reads == (1, 2)


async def test_invalidate_reloads_on_next_use(make_store: StoreFactory, clock: FakeClock) -> None:
    store = Counting(make_store())
    directory = Directory(store, refresh_interval=60.0, clock=clock)
    assert await directory.tenant("smo-a") is None
    await store.create_tenant(tenant("smo-a"))
    assert await directory.tenant("smo-a") is None
    directory.invalidate()
    assert await directory.tenant("smo-a") is not None
    assert store.reads == (0, 2)


async def test_concurrent_lookups_share_one_reload(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = Counting(make_store())
    await seeded(store.store)
    directory = Directory(store, clock=clock)
    found = await asyncio.gather(*(directory.tenant("smo-b") for _ in range(20)))
    assert all(t is not None and t.tenant_id == "smo-b" for t in found)
    assert store.reads == (0, 1)


async def test_identity_takes_the_first_user_and_every_binding_of_the_names(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = make_store()
    await seeded(store)
    directory = Directory(store, clock=clock)
    names = ["spiffe://unknown/x", "spiffe://smo-a.example/o2ims", "CN=ops,O=Example"]
    identity = await directory.identity([*names, "smo-b.example.net", names[1]])
    assert identity.user is not None
    assert (identity.user.tenant_id, identity.user.name) == ("smo-a", "A")
    assert [(b.subject, b.role) for b in identity.bindings] == [
        ("spiffe://smo-a.example/o2ims", "tenant-admin"),
        ("CN=ops,O=Example", "viewer"),
        ("smo-b.example.net", "tenant-viewer"),
    ]
    nobody = await directory.identity(["nobody"])
    assert nobody == Identity(user=None, bindings=())


async def test_a_store_outage_after_the_first_load_serves_the_cached_copy(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = Counting(make_store())
    await seeded(store.store)
    directory = Directory(store, refresh_interval=1.0, clock=clock)
    assert await directory.tenant("smo-a") is not None
    store.failing = True
    clock.advance(1.0)
    assert await directory.tenant("smo-a") is not None
    assert await directory.tenant("smo-b") is not None
    assert store.reads == (1, 1)  # one failed check, then the copy until the next interval
    store.failing = False
    clock.advance(1.0)
    await store.store.delete_tenant("smo-a")
    assert await directory.tenant("smo-a") is None


async def test_a_store_outage_before_any_load_is_an_error(
    make_store: StoreFactory, clock: FakeClock
) -> None:
    store = Counting(make_store())
    store.failing = True
    directory = Directory(store, clock=clock)
    with pytest.raises(BackendUnavailableError):
        await directory.identity(["anyone"])
