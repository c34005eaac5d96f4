"""The bootstrap file: parsing, its errors, and applying it idempotently."""

from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path

import pytest
from tests.tenancy.conftest import StoreFactory

from netweave.security.tenancy import (
    TenancySeed,
    TenancyStore,
    apply_seed,
    load_tenancy_file,
)

EXAMPLE = """
tenants:
  - {tenantId: smo-a, name: "SMO A",
     quotas: {maxSubscriptions: 10, requestsPerSecond: 50, burst: 100}}
  - {tenantId: smo-b, name: "SMO B", status: suspended, description: "second"}
users:
  - {tenantId: smo-a, subject: "spiffe://smo-a.example/o2ims", name: "SMO A client"}
  - {tenantId: smo-b, subject: "CN=smo-b,O=Example"}
roleBindings:
  - {subject: "spiffe://smo-a.example/o2ims", role: tenant-admin, tenantId: smo-a}
  - {subject: "ops@example.net", role: platform-admin}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenancy.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def example(tmp_path: Path) -> TenancySeed:
    return load_tenancy_file(write(tmp_path, EXAMPLE))


def test_the_example_file_parses(example: TenancySeed) -> None:
    smo_a, smo_b = example.tenants
    assert (smo_a.tenant_id, smo_a.name, smo_a.status) == ("smo-a", "SMO A", "active")
    assert smo_a.quotas.max_subscriptions == 10
    assert smo_a.quotas.requests_per_second == 50.0
    assert smo_a.quotas.burst == 100
    assert smo_a.quotas.max_resource_pools is None
    assert (smo_b.status, smo_b.description) == ("suspended", "second")
    assert [(u.tenant_id, u.subject, u.name) for u in example.users] == [
        ("smo-a", "spiffe://smo-a.example/o2ims", "SMO A client"),
        ("smo-b", "CN=smo-b,O=Example", None),
    ]
    assert [(b.subject, b.role, b.tenant_id) for b in example.role_bindings] == [
        ("spiffe://smo-a.example/o2ims", "tenant-admin", "smo-a"),
        ("ops@example.net", "platform-admin", None),
    ]


def test_an_empty_file_is_an_empty_seed(tmp_path: Path) -> None:
    assert load_tenancy_file(write(tmp_path, "")) == TenancySeed()
    assert load_tenancy_file(write(tmp_path, "tenants: []\nusers:\n")) == TenancySeed()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n", "the tenancy file must be a mapping"),
        ("tenants: [\n", "the tenancy file is not valid YAML: "),
        ("groups: []\n", "groups: unknown section"),
        ("users: {a: 1}\n", "users: must be a list"),
        ("tenants: [{tenantId: Smo, name: x}]\n", "tenants[0].tenantId: Value error, must be"),
        ("tenants: [{tenantId: shared, name: x}]\n", "tenants[0].tenantId: Value error, 'shared'"),
        ("tenants: [{tenantId: a, name: 5}]\n", "tenants[0].name: Input should be a valid string"),
        ("tenants: [{tenantId: a, name: x, colour: red}]\n", "tenants[0].colour: Extra inputs"),
        (
            "tenants: [{tenantId: a, name: x, quotas: {burst: 0}}]\n",
            "tenants[0].quotas.burst: Input should be greater than or equal to 1",
        ),
        (
            "tenants: [{tenantId: a, name: x}, {tenantId: a, name: y}]\n",
            "tenants[1].tenantId: repeats tenants[0]",
        ),
        ("tenants: [a]\n", "tenants[0]: Input should be a valid dictionary"),
        (
            "tenants: [{tenantId: a, name: x}]\nusers: [{tenantId: a, subject: ''}]\n",
            "users[0].subject: String should have at least 1 character",
        ),
        ("users: [{tenantId: b, subject: s}]\n", "users[0].tenantId: the file defines no tenant b"),
        (
            "tenants: [{tenantId: a, name: x}]\n"
            "users: [{tenantId: a, subject: s}, {tenantId: a, subject: s}]\n",
            "users[1].subject: repeats users[0]",
        ),
        ("roleBindings: [{subject: s, role: god}]\n", "roleBindings[0].role: Value error, unknown"),
        (
            "roleBindings: [{subject: s, role: tenant-admin}]\n",
            "roleBindings[0]: Value error, the tenant role tenant-admin needs a tenantId",
        ),
        (
            "tenants: [{tenantId: a, name: x}]\n"
            "roleBindings: [{subject: s, role: viewer, tenantId: a}]\n",
            "roleBindings[0]: Value error, the system role viewer takes no tenantId",
        ),
        (
            "roleBindings: [{subject: s, role: tenant-viewer, tenantId: nope}]\n",
            "roleBindings[0].tenantId: the file defines no tenant nope",
        ),
        (
            "roleBindings: [{subject: s, role: viewer}, {subject: s, role: viewer}]\n",
            "roleBindings[1]: repeats roleBindings[0]",
        ),
    ],
)
def test_invalid_content_is_a_one_line_error_naming_the_entry(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)) as raised:
        load_tenancy_file(write(tmp_path, text))
    assert "\n" not in str(raised.value)


def test_a_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the tenancy file"):
        load_tenancy_file(tmp_path / "absent.yaml")


async def counts(store: TenancyStore) -> tuple[int, int, int]:
    snapshot = await store.snapshot()
    return len(snapshot.tenants), len(snapshot.users), len(snapshot.bindings)


async def test_applying_the_seed_twice_leaves_one_copy_and_writes_nothing_the_second_time(
    store: TenancyStore, example: TenancySeed
) -> None:
    await apply_seed(store, example, clock=lambda: 1_700_000_000.0)
    first = await store.snapshot()
    assert await counts(store) == (2, 2, 2)
    assert first.tenants[0].created_at == "2023-11-14T22:13:20.000Z"
    await apply_seed(store, example, clock=lambda: 1_800_000_000.0)
    assert await store.snapshot() == first


async def test_replicas_applying_the_seed_at_once_leave_one_copy(
    make_store: StoreFactory, example: TenancySeed
) -> None:
    replicas = [make_store() for _ in range(3)]
    await asyncio.gather(*(apply_seed(replica, example) for replica in replicas))
    assert await counts(replicas[0]) == (2, 2, 2)


async def test_a_changed_seed_updates_tenants_and_moves_users_keeping_their_ids(
    store: TenancyStore, example: TenancySeed, tmp_path: Path
) -> None:
    await apply_seed(store, example, clock=lambda: 1_700_000_000.0)
    before = await store.snapshot()
    changed = load_tenancy_file(
        write(
            tmp_path,
            EXAMPLE.replace('name: "SMO A",', 'name: "SMO Alpha",')
            .replace("maxSubscriptions: 10", "maxSubscriptions: 20")
            .replace(
                '{tenantId: smo-a, subject: "spiffe://smo-a.example/o2ims", name: "SMO A client"}',
                '{tenantId: smo-b, subject: "spiffe://smo-a.example/o2ims", name: "moved"}',
            ),
        )
    )
    await apply_seed(store, changed, clock=lambda: 1_800_000_000.0)
    after = await store.snapshot()
    smo_a = after.tenants[0]
    assert (smo_a.name, smo_a.quotas.max_subscriptions) == ("SMO Alpha", 20)
    assert smo_a.created_at == before.tenants[0].created_at
    assert smo_a.updated_at == "2027-01-15T08:00:00.000Z"
    assert after.tenants[1] == before.tenants[1]  # untouched: not rewritten
    moved = await store.user_by_subject("spiffe://smo-a.example/o2ims")
    earlier = next(u for u in before.users if u.subject == "spiffe://smo-a.example/o2ims")
    assert moved is not None
    assert (moved.user_id, moved.tenant_id, moved.name) == (earlier.user_id, "smo-b", "moved")
    assert after.bindings == before.bindings


async def test_records_the_seed_does_not_name_are_left_alone(
    store: TenancyStore, example: TenancySeed, tmp_path: Path
) -> None:
    await apply_seed(store, example)
    await apply_seed(store, load_tenancy_file(write(tmp_path, "tenants: []\n")))
    assert await counts(store) == (2, 2, 2)
