"""``roles_for``: which bound roles count in which tenant."""

from __future__ import annotations

import pytest
from tests.tenancy.records import binding

from netweave.security.tenancy import Identity, roles_for

IDENTITY = Identity(
    user=None,
    bindings=(
        binding("alice", "viewer"),
        binding("alice", "tenant-admin", "smo-a"),
        binding("alice", "tenant-operator", "smo-b"),
        binding("CN=alice", "operator"),
    ),
)


@pytest.mark.parametrize(
    ("tenant", "roles"),
    [
        (None, {"viewer", "operator"}),
        ("smo-a", {"viewer", "operator", "tenant-admin"}),
        ("smo-b", {"viewer", "operator", "tenant-operator"}),
        ("smo-c", {"viewer", "operator"}),
    ],
)
def test_system_roles_always_count_and_tenant_roles_only_in_their_tenant(
    tenant: str | None, roles: set[str]
) -> None:
    assert roles_for(IDENTITY, tenant) == frozenset(roles)


def test_no_bindings_no_roles() -> None:
    assert roles_for(Identity(user=None, bindings=()), "smo-a") == frozenset()
