"""The Authenticator: modes, the directory's part, and the cache of authentications."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.credentials import AUDIENCE, ISSUER, TokenIssuer

from netweave.errors import ForbiddenError, UnauthenticatedError
from netweave.security.authentication import Authenticator
from netweave.security.tenancy import (
    Directory,
    RoleBinding,
    Tenant,
    TenantCreate,
    User,
    timestamp,
)
from netweave.security.tls import PeerIdentity
from netweave.security.tokens import TokenSettings, TokenValidator
from netweave.store.tenants import InMemoryTenancyStore

NOW = timestamp(time.time())
SPIFFE = "spiffe://smo-a.example.net/client"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(InMemoryTenancyStore):
    def __init__(self) -> None:
        super().__init__()
        self.snapshots = 0

    async def snapshot(self) -> Any:
        self.snapshots += 1
        return await super().snapshot()


@pytest.fixture
def issuer(tmp_path: Path) -> TokenIssuer:
    return TokenIssuer(tmp_path / "key.pem")


@pytest.fixture
async def store() -> CountingStore:
    store = CountingStore()
    await store.create_tenant(
        Tenant(**dict(TenantCreate(tenant_id="smo-a", name="A")), created_at=NOW, updated_at=NOW)
    )
    for index, subject in enumerate(("smo-a-client", SPIFFE)):
        await store.create_user(
            User(subject=subject, user_id=f"u-{index}", tenant_id="smo-a", created_at=NOW)
        )
        await store.create_binding(
            RoleBinding(
                subject=subject,
                role="tenant-operator",
                tenant_id="smo-a",
                role_binding_id=f"b-{index}",
                created_at=NOW,
            )
        )
    return store


def scope(authorization: str | None = None, peer: PeerIdentity | None = None) -> dict[str, Any]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    result: dict[str, Any] = {"headers": headers, "client": ("127.0.0.1", 5000)}
    if peer is not None:
        result["netweave.peer"] = peer
    return result


def peer(*uris: str) -> PeerIdentity:
    return PeerIdentity(
        subject="CN=client",
        common_name="client",
        dns_sans=(),
        uri_sans=uris,
        email_sans=(),
        fingerprint_sha256="ab" * 32,
    )


def authenticator(
    store: CountingStore, issuer: TokenIssuer, mode: Any, clock: Clock, **options: Any
) -> Authenticator:
    tokens = TokenValidator(
        TokenSettings(issuer=ISSUER, audience=AUDIENCE, key_files=(issuer.key_file,))
    )
    return Authenticator(
        mode=mode,
        directory=Directory(store, clock=clock),
        tokens=tokens,
        clock=clock,
        **options,
    )


async def test_a_token_principal_gets_its_users_tenant_and_bound_roles(
    store: CountingStore, issuer: TokenIssuer
) -> None:
    auth = authenticator(store, issuer, "token", Clock())
    principal = await auth.authenticate(scope(f"Bearer {issuer.mint('smo-a-client')}"))
    assert principal.subject == "smo-a-client"
    assert principal.tenant == "smo-a"
    assert principal.roles == {"tenant-operator"}
    assert principal.auth == {"token"}


async def test_a_certificate_principal_is_named_by_its_first_registered_name(
    store: CountingStore, issuer: TokenIssuer
) -> None:
    auth = authenticator(store, issuer, "mtls", Clock())
    principal = await auth.authenticate(
        scope(peer="spiffe://unknown" and peer("spiffe://x", SPIFFE))
    )
    assert (principal.subject, principal.tenant, principal.auth) == (SPIFFE, "smo-a", {"mtls"})
    with pytest.raises(UnauthenticatedError) as missing:
        await auth.authenticate(scope())
    assert missing.value.headers["WWW-Authenticate"].startswith("ClientCertificate")


async def test_both_requires_a_certificate_and_a_token(
    store: CountingStore, issuer: TokenIssuer
) -> None:
    auth = authenticator(store, issuer, "both", Clock())
    token = f"Bearer {issuer.mint('smo-a-client')}"
    with pytest.raises(UnauthenticatedError):
        await auth.authenticate(scope(token))
    with pytest.raises(UnauthenticatedError):
        await auth.authenticate(scope(peer=peer(SPIFFE)))
    principal = await auth.authenticate(scope(token, peer(SPIFFE)))
    assert principal.auth == {"mtls", "token"}


async def test_a_token_tenant_contradicting_the_registered_one_is_refused(
    store: CountingStore, issuer: TokenIssuer
) -> None:
    auth = authenticator(store, issuer, "token", Clock())
    with pytest.raises(ForbiddenError):
        await auth.authenticate(scope(f"Bearer {issuer.mint('smo-a-client', tenant='smo-b')}"))


async def test_authentications_are_reused_until_the_ttl_or_a_directory_change(
    store: CountingStore, issuer: TokenIssuer
) -> None:
    clock = Clock()
    auth = authenticator(store, issuer, "token", clock, cache_ttl=1.0)
    header = f"Bearer {issuer.mint('smo-a-client')}"
    await auth.authenticate(scope(header))  # loads the directory: not cached across a load
    first = await auth.authenticate(scope(header))
    reads = store.snapshots
    for _ in range(10):
        assert await auth.authenticate(scope(header)) is first
    assert store.snapshots == reads
    # a change through this replica's directory is seen at once
    auth._directory.invalidate()
    again = await auth.authenticate(scope(header))
    assert again is not first and again == first
    # and the entry expires after the ttl
    clock.now += 1.5
    assert await auth.authenticate(scope(header)) is not again


async def test_failures_are_never_cached(store: CountingStore, issuer: TokenIssuer) -> None:
    auth = authenticator(store, issuer, "token", Clock())
    header = f"Bearer {issuer.mint('smo-a-client')}"
    with pytest.raises(UnauthenticatedError):
        await auth.authenticate(scope(header + "x"))
    assert (await auth.authenticate(scope(header))).subject == "smo-a-client"
    with pytest.raises(UnauthenticatedError):
        await auth.authenticate(scope(header + "x"))


async def test_the_cache_keeps_no_entry_past_the_tokens_expiry(
    store: CountingStore, issuer: TokenIssuer
) -> None:
    auth = authenticator(store, issuer, "token", Clock(), cache_ttl=3600.0)
    expiring = issuer.mint("smo-a-client", exp=int(time.time()) + 2)
    principal = await auth.authenticate(scope(f"Bearer {expiring}"))
    assert auth._lifetime(principal) <= 2.0


async def test_the_cache_is_bounded(store: CountingStore, issuer: TokenIssuer) -> None:
    auth = authenticator(store, issuer, "token", Clock(), cache_size=3)
    for index in range(6):
        await auth.authenticate(scope(f"Bearer {issuer.mint('smo-a-client', jti=str(index))}"))
    assert len(auth._cache) == 3
