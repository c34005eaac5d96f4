"""Bearer-token validation against keys generated here, served by a real JWKS endpoint."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from netweave.errors import BackendUnavailableError, UnauthenticatedError
from netweave.security.tokens import TokenSettings, TokenValidator

ISSUER = "https://idp.example.test/realms/smo"
AUDIENCE = "netweave"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def jwk(key: PrivateKey, kid: str, alg: str | None = None) -> dict[str, Any]:
    """The public JWK of ``key``."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        data = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(public, as_dict=True)
    data.update(kid=kid, use="sig")
    if alg:
        data["alg"] = alg
    return data


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "smo-1",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "tenant": "acme",
        "scope": "openid role:o2ims-admin",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(key: PrivateKey, alg: str = "RS256", kid: str | None = "k1", **overrides: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer(value: str) -> str:
    return f"Bearer {value}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JWKSServer:
    """A real HTTP server on loopback serving ``keys`` as a JWKS and counting fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.fetches = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.fetches += 1
                    body = json.dumps({"keys": outer.keys}).encode()
                    status = outer.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    def __enter__(self) -> JWKSServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def jwks_server(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> Iterator[JWKSServer]:
    with JWKSServer() as server:
        server.keys = [jwk(rsa_key, "k1"), jwk(ec_key, "e1")]
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def validator(jwks_server: JWKSServer, http: httpx.AsyncClient, clock: FakeClock) -> TokenValidator:
    settings = TokenSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url)
    return TokenValidator(settings, http=http, clock=clock)


async def rejected(validator: TokenValidator, header: str | None) -> UnauthenticatedError:
    with pytest.raises(UnauthenticatedError) as caught:
        await validator.principal(header)
    error = caught.value
    assert error.status == 401
    challenge = error.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="netweave"')
    if header:  # the token never comes back, in the detail or the challenge
        credential = header.partition(" ")[2]
        if credential:
            assert credential not in error.detail
            assert credential not in challenge
            assert credential not in str(error)
    return error


def description(error: UnauthenticatedError) -> str:
    challenge = error.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    return challenge.split('error_description="', 1)[1].rstrip('"')


# -- valid tokens ---------------------------------------------------------------------------


async def test_valid_rsa_token_maps_scopes_roles_and_tenant(
    validator: TokenValidator, rsa_key: rsa.RSAPrivateKey
) -> None:
    principal = await validator.principal(
        bearer(token(rsa_key, roles=["o2ims-reader", "something-else"]))
    )
    assert principal.subject == "smo-1"
    assert principal.tenant == "acme"
    assert principal.roles == {"platform-admin", "viewer"}
    assert principal.auth == {"token"}
    assert principal.is_authenticated
    assert principal.claims["iss"] == ISSUER
    assert "claims" not in repr(principal)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_valid_ec_token_and_scheme_case(
    validator: TokenValidator, ec_key: ec.EllipticCurvePrivateKey, scheme: str
) -> None:
    value = token(ec_key, alg="ES256", kid="e1", scope="role:o2ims-subscriber", tenant=None)
    principal = await validator.principal(f"{scheme} {value}")
    assert principal.roles == {"operator"}
    assert principal.tenant is None


async def test_token_without_role_claims_has_no_roles(
    validator: TokenValidator, rsa_key: rsa.RSAPrivateKey
) -> None:
    principal = await validator.principal(bearer(token(rsa_key, scope=None)))
    assert principal.roles == frozenset()


async def test_claim_mapping_is_configurable(
    jwks_server: JWKSServer, http: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = TokenSettings(
        issuer=ISSUER,
        audience=("other", AUDIENCE),
        jwks_url=jwks_server.url,
        tenant_claim="org.tenant_id",
        roles_claim="realm_access.roles",
        scope_claim="scp",
        scope_role_prefix="netweave.",
        role_map={"smo-admin": "tenant-admin", "smo-read": "tenant-viewer"},
    )
    validator = TokenValidator(settings, http=http)
    value = token(
        rsa_key,
        tenant=None,
        scope="role:o2ims-admin",  # not the configured scope claim: ignored
        org={"tenant_id": "acme"},
        realm_access={"roles": ["smo-admin", "o2ims-admin"]},
        scp="netweave.smo-read other",
    )
    principal = await validator.principal(bearer(value))
    assert principal.tenant == "acme"
    assert principal.roles == {"tenant-admin", "tenant-viewer"}


async def test_expiry_within_leeway_is_accepted(
    validator: TokenValidator, rsa_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    principal = await validator.principal(bearer(token(rsa_key, exp=now - 10)))
    assert principal.subject == "smo-1"


# -- rejected tokens -----------------------------------------------------------------------


async def test_expired(validator: TokenValidator, rsa_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    error = await rejected(validator, bearer(token(rsa_key, iat=now - 7200, exp=now - 3600)))
    assert description(error) == "token expired"


async def test_not_yet_valid(validator: TokenValidator, rsa_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    error = await rejected(validator, bearer(token(rsa_key, nbf=now + 3600, exp=now + 7200)))
    assert description(error) == "token not yet valid"


async def test_wrong_audience(validator: TokenValidator, rsa_key: rsa.RSAPrivateKey) -> None:
    error = await rejected(validator, bearer(token(rsa_key, aud="someone-else")))
    assert description(error) == "token audience not accepted"


async def test_wrong_issuer(validator: TokenValidator, rsa_key: rsa.RSAPrivateKey) -> None:
    error = await rejected(validator, bearer(token(rsa_key, iss="https://evil.example.test")))
    assert description(error) == "token issuer not accepted"


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub"])
async def test_required_claims(
    validator: TokenValidator, rsa_key: rsa.RSAPrivateKey, claim: str
) -> None:
    omitted: dict[str, Any] = {claim: None}
    error = await rejected(validator, bearer(token(rsa_key, **omitted)))
    assert description(error) == f"token lacks the {claim} claim"


async def test_alg_none_is_refused(validator: TokenValidator) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps(claims()).encode())
    # with an empty signature the token is not even a well-formed JWS
    error = await rejected(validator, bearer(f"{header}.{payload}."))
    assert description(error) == "malformed token"
    error = await rejected(validator, bearer(f"{header}.{payload}.AAAA"))
    assert description(error) == "token algorithm not accepted"
    # PyJWT's own "none" token
    unsigned = jwt.encode(claims(), "", algorithm="none", headers={"kid": "k1"})
    error = await rejected(validator, bearer(unsigned + "AAAA"))
    assert description(error) == "token algorithm not accepted"


async def test_hs256_signed_with_the_public_key_is_refused(
    validator: TokenValidator, rsa_key: rsa.RSAPrivateKey, jwks_server: JWKSServer
) -> None:
    """The classic confusion: HMAC over the token with the RSA public key PEM as secret."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for kid in ("k1", None):
        head = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims()).encode())}"
        signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        error = await rejected(validator, bearer(f"{signing_input}.{b64(signature)}"))
        assert description(error) == "token algorithm not accepted"


async def test_algorithm_not_in_the_allow_list(
    jwks_server: JWKSServer, http: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    settings = TokenSettings(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url, algorithms=("ES256",)
    )
    validator = TokenValidator(settings, http=http)
    error = await rejected(validator, bearer(token(rsa_key)))
    assert description(error) == "token algorithm not accepted"


async def test_algorithm_must_fit_the_key(
    validator: TokenValidator, rsa_key: rsa.RSAPrivateKey
) -> None:
    # an RS256 token naming the EC key's kid
    error = await rejected(validator, bearer(token(rsa_key, kid="e1")))
    assert description(error) == "token algorithm does not match the signing key"


async def test_bad_signature(
    validator: TokenValidator, rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey
) -> None:
    error = await rejected(validator, bearer(token(rsa_key2, kid="k1")))
    assert description(error) == "signature verification failed"
    # a payload swapped under a valid signature
    good = token(rsa_key).split(".")
    forged = b64(json.dumps(claims(tenant="other")).encode())
    error = await rejected(validator, bearer(f"{good[0]}.{forged}.{good[2]}"))
    assert description(error) == "signature verification failed"


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Bearer a.b",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig extra",
        "Bearer " + "a" * 9000 + "." + "b" * 9000 + ".c",
        "Token abc.def.ghi",
    ],
)
async def test_malformed_header(validator: TokenValidator, header: str) -> None:
    error = await rejected(validator, header)
    assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", [None, "", "   "])
async def test_missing_header_gets_a_bare_challenge(
    validator: TokenValidator, header: str | None
) -> None:
    error = await rejected(validator, header)
    assert error.headers["WWW-Authenticate"] == 'Bearer realm="netweave"'


# -- the JWKS cache ------------------------------------------------------------------------


async def test_jwks_is_cached_for_its_ttl(
    validator: TokenValidator,
    jwks_server: JWKSServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    # distinct tokens (jti): a verified token answered from the token cache needs no keys
    for n in range(5):
        await validator.principal(bearer(token(rsa_key, jti=f"t{n}")))
    assert jwks_server.fetches == 1
    clock.advance(299)
    await validator.principal(bearer(token(rsa_key, jti="t5")))
    assert jwks_server.fetches == 1
    clock.advance(2)
    await validator.principal(bearer(token(rsa_key, jti="t6")))
    assert jwks_server.fetches == 2


async def test_unknown_kid_refreshes_once_per_interval(
    validator: TokenValidator,
    jwks_server: JWKSServer,
    clock: FakeClock,
    rsa_key2: rsa.RSAPrivateKey,
) -> None:
    error = await rejected(validator, bearer(token(rsa_key2, kid="unknown-1")))
    assert description(error) == "unknown signing key"
    assert jwks_server.fetches == 1  # the first fetch was just made: no second one
    clock.advance(11)
    await rejected(validator, bearer(token(rsa_key2, kid="unknown-2")))
    assert jwks_server.fetches == 2  # one refresh for the unknown kid
    for n in range(5):
        clock.advance(1)
        await rejected(validator, bearer(token(rsa_key2, kid=f"unknown-{n + 3}")))
    assert jwks_server.fetches == 2  # all within the 10 s window
    clock.advance(10)
    await rejected(validator, bearer(token(rsa_key2, kid="unknown-9")))
    assert jwks_server.fetches == 3


async def test_concurrent_unknown_kids_cause_one_fetch(
    validator: TokenValidator,
    jwks_server: JWKSServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key2: rsa.RSAPrivateKey,
) -> None:
    await validator.principal(bearer(token(rsa_key)))
    clock.advance(11)
    results = await asyncio.gather(
        *(validator.principal(bearer(token(rsa_key2, kid=f"x{n}"))) for n in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, UnauthenticatedError) for r in results)
    assert jwks_server.fetches == 2


async def test_key_rotation_is_picked_up(
    validator: TokenValidator,
    jwks_server: JWKSServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key2: rsa.RSAPrivateKey,
) -> None:
    await validator.principal(bearer(token(rsa_key, kid="k1")))
    jwks_server.keys = [jwk(rsa_key2, "k2")]  # the IdP rotates: k1 retired, k2 published
    clock.advance(11)
    principal = await validator.principal(bearer(token(rsa_key2, kid="k2")))
    assert principal.subject == "smo-1"
    assert jwks_server.fetches == 2
    error = await rejected(validator, bearer(token(rsa_key, kid="k1")))
    assert description(error) == "unknown signing key"


async def test_failed_refresh_keeps_the_keys_held(
    validator: TokenValidator,
    jwks_server: JWKSServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    await validator.principal(bearer(token(rsa_key, jti="t1")))
    jwks_server.status = 500
    clock.advance(301)
    principal = await validator.principal(bearer(token(rsa_key, jti="t2")))
    assert principal.subject == "smo-1"
    assert jwks_server.fetches == 2
    await validator.principal(bearer(token(rsa_key, jti="t3")))
    assert jwks_server.fetches == 2  # a failing endpoint is not hammered either


async def test_unreachable_jwks_without_keys_is_503(
    http: httpx.AsyncClient, clock: FakeClock, rsa_key: rsa.RSAPrivateKey
) -> None:
    with JWKSServer() as server:
        url = server.url
    settings = TokenSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=url)
    validator = TokenValidator(settings, http=http, clock=clock)
    with pytest.raises(BackendUnavailableError) as caught:
        await validator.principal(bearer(token(rsa_key)))
    assert caught.value.headers["Retry-After"] == "10"


async def test_symmetric_and_foreign_jwks_entries_are_ignored(
    jwks_server: JWKSServer,
    validator: TokenValidator,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwks_server.keys = [
        {"kty": "oct", "kid": "sym", "k": b64(b"secret")},
        jwk(weak, "weak"),
        jwk(ec_key, "enc") | {"use": "enc"},
        jwk(rsa_key, "pinned", alg="PS256"),
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
        jwk(rsa_key, "k1"),
    ]
    for kid in ("sym", "weak", "enc", "broken"):
        error = await rejected(validator, bearer(token(rsa_key, kid=kid)))
        assert description(error) == "unknown signing key"
    error = await rejected(validator, bearer(token(rsa_key, kid="pinned")))
    assert description(error) == "token algorithm does not match the signing key"
    assert (await validator.principal(bearer(token(rsa_key, alg="PS256", kid="pinned")))).roles
    assert (await validator.principal(bearer(token(rsa_key, kid="k1")))).roles


# -- the verified-token cache ---------------------------------------------------------------


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token PyJWT is asked to verify, in order."""
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return calls


@pytest.fixture
def wall() -> FakeClock:
    """The validator's epoch clock, starting now (PyJWT itself reads the real time)."""
    clock = FakeClock()
    clock.now = time.time()
    return clock


def cached_validator(
    jwks_server: JWKSServer, http: httpx.AsyncClient, wall: FakeClock, **settings: Any
) -> TokenValidator:
    return TokenValidator(
        TokenSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url, **settings),
        http=http,
        wall_clock=wall,
    )


async def test_a_cached_token_is_not_verified_again(
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    decodes: list[str],
) -> None:
    validator = cached_validator(jwks_server, http, wall)
    value = token(rsa_key)
    first = await validator.principal(bearer(value))
    for _ in range(5):
        assert await validator.principal(f"bearer  {value} ") == first
    assert decodes == [value]
    other = token(rsa_key, sub="smo-2")
    assert (await validator.principal(bearer(other))).subject == "smo-2"
    assert decodes == [value, other]
    wall.advance(59)
    await validator.principal(bearer(value))
    assert len(decodes) == 2
    wall.advance(2)  # past token_cache_ttl (60 s), long before exp: verified once more
    assert await validator.principal(bearer(value)) == first
    assert decodes == [value, other, value]


async def test_an_expired_cached_token_is_refused_and_dropped(
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    decodes: list[str],
) -> None:
    validator = cached_validator(jwks_server, http, wall, token_cache_ttl=3600)
    exp = int(wall.now) + 100
    value = token(rsa_key, exp=exp)
    await validator.principal(bearer(value))
    wall.now = exp + 31  # beyond exp and the 30 s leeway: expired, as PyJWT would say
    error = await rejected(validator, bearer(value))
    assert description(error) == "token expired"
    assert decodes == [value]  # refused from the cache entry
    wall.now = exp - 50  # the entry is gone: the next use is verified afresh
    await validator.principal(bearer(value))
    assert decodes == [value, value]


async def test_a_cached_token_past_exp_within_the_leeway_is_verified_each_time(
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    decodes: list[str],
) -> None:
    validator = cached_validator(jwks_server, http, wall)
    exp = int(wall.now) + 20
    value = token(rsa_key, exp=exp)
    await validator.principal(bearer(value))
    wall.now = exp + 5  # the cache never answers past exp; PyJWT (real time) still accepts
    for _ in range(3):
        assert (await validator.principal(bearer(value))).subject == "smo-1"
    assert decodes == [value] * 4


async def test_failures_are_not_cached_and_a_forgery_never_rides_on_a_cached_token(
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    decodes: list[str],
) -> None:
    validator = cached_validator(jwks_server, http, wall)
    good = token(rsa_key)
    await validator.principal(bearer(good))
    head, payload, signature = good.split(".")
    flipped = signature[:-10] + ("A" if signature[-10] != "A" else "B") + signature[-9:]
    forged_payload = b64(json.dumps(claims(tenant="other")).encode())
    for forgery in (f"{head}.{payload}.{flipped}", f"{head}.{forged_payload}.{signature}"):
        assert forgery.startswith(f"{head}.")
        for _ in range(2):  # refused every time: a failure is never cached
            error = await rejected(validator, bearer(forgery))
            assert description(error) == "signature verification failed"
    assert len(decodes) == 5
    assert (await validator.principal(bearer(good))).tenant == "acme"  # still cached
    assert len(decodes) == 5


async def test_the_cache_is_bounded(
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    decodes: list[str],
) -> None:
    validator = cached_validator(jwks_server, http, wall, token_cache_size=3)
    values = [token(rsa_key, sub=f"smo-{n}") for n in range(5)]
    for value in values:
        await validator.principal(bearer(value))
    assert len(decodes) == 5
    for value in values[2:]:  # the three most recent are held
        await validator.principal(bearer(value))
    assert len(decodes) == 5
    for value in values[:2]:  # the two oldest were dropped
        await validator.principal(bearer(value))
    assert len(decodes) == 7
    await validator.principal(bearer(values[4]))  # the most recently used before those two
    assert len(decodes) == 7
    await validator.principal(bearer(values[2]))  # the least recently used: dropped
    assert len(decodes) == 8


async def test_a_withdrawn_key_empties_the_cache(
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key2: rsa.RSAPrivateKey,
) -> None:
    settings = TokenSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url)
    validator = TokenValidator(settings, http=http, clock=clock, wall_clock=wall)
    retired = token(rsa_key, kid="k1")
    await validator.principal(bearer(retired))
    jwks_server.keys = [jwk(rsa_key, "k1"), jwk(rsa_key2, "k2")]
    clock.advance(301)
    await validator.principal(bearer(token(rsa_key2, kid="k2")))  # a refresh adding a key
    assert jwks_server.fetches == 2
    assert (await validator.principal(bearer(retired))).subject == "smo-1"
    jwks_server.keys = [jwk(rsa_key2, "k2")]  # k1 withdrawn
    clock.advance(301)
    await validator.principal(bearer(token(rsa_key2, kid="k2", sub="smo-2")))
    assert jwks_server.fetches == 3
    error = await rejected(validator, bearer(retired))
    assert description(error) == "unknown signing key"


@pytest.mark.parametrize("disabled", [{"token_cache_ttl": 0}, {"token_cache_size": 0}])
async def test_the_cache_can_be_disabled(
    jwks_server: JWKSServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    decodes: list[str],
    disabled: dict[str, float],
) -> None:
    validator = cached_validator(jwks_server, http, wall, **disabled)
    value = token(rsa_key)
    for _ in range(3):
        await validator.principal(bearer(value))
    assert decodes == [value] * 3


# -- key files -----------------------------------------------------------------------------


def _self_signed(key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_key_files(
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key2: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    cert = tmp_path / "ec.crt"
    cert.write_bytes(_self_signed(ec_key))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk(ed_key, "ed1")]}))
    settings = TokenSettings(issuer=ISSUER, audience=AUDIENCE, key_files=(pem, cert, jwks))
    validator = TokenValidator(settings)

    for value in (
        token(rsa_key, kid=None),
        token(rsa_key, kid="whatever"),  # PEM keys carry no kid and serve any
        token(ec_key, alg="ES256", kid=None),
        token(ed_key, alg="EdDSA", kid="ed1"),
    ):
        principal = await validator.principal(bearer(value))
        assert principal.roles == {"platform-admin"}
    error = await rejected(validator, bearer(token(rsa_key2, kid=None)))
    assert description(error) == "signature verification failed"
    error = await rejected(validator, bearer(token(rsa_key, alg="RS384", kid=None)))
    assert description(error) == "token algorithm not accepted"


async def test_jwks_file_alone_refuses_unknown_kid(
    tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk(ed_key, "ed1")]}))
    validator = TokenValidator(TokenSettings(issuer=ISSUER, audience=AUDIENCE, key_files=(jwks,)))
    error = await rejected(validator, bearer(token(ed_key, alg="EdDSA", kid="ed2")))
    assert description(error) == "unknown signing key"


async def test_malformed_claims(validator: TokenValidator, rsa_key: rsa.RSAPrivateKey) -> None:
    error = await rejected(validator, bearer(token(rsa_key, tenant=7)))
    assert description(error) == "token tenant claim malformed"
    error = await rejected(validator, bearer(token(rsa_key, scope=["role:x", 3])))
    assert description(error) == "token roles or scope claim malformed"
    error = await rejected(validator, bearer(token(rsa_key, sub="")))
    assert description(error) == "token subject malformed"


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithms",
    [("none",), ("HS256",), ("RS256", "HS512"), ("HS384",), (), ("RS256", "XS1")],
)
def test_settings_refuse_symmetric_and_unknown_algorithms(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        TokenSettings(
            issuer=ISSUER, audience=AUDIENCE, jwks_url="https://idp/jwks", algorithms=algorithms
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "jwks_url or key_files"),
        ({"jwks_url": "http://idp.example.test/jwks"}, "https"),
        ({"jwks_url": "https://idp/jwks", "issuer": ""}, "issuer"),
        ({"jwks_url": "https://idp/jwks", "audience": ""}, "audience"),
        ({"jwks_url": "https://idp/jwks", "role_map": {"x": "root"}}, "unknown netweave roles"),
        ({"jwks_url": "https://idp/jwks", "leeway": -1}, "negative"),
        ({"jwks_url": "https://idp/jwks", "token_cache_ttl": -1}, "negative"),
        ({"jwks_url": "https://idp/jwks", "token_cache_size": -1}, "negative"),
    ],
)
def test_settings_validation(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE} | kwargs
    with pytest.raises(ValueError, match=message):
        TokenSettings(**arguments)


def test_settings_accept_loopback_http_and_need_a_client() -> None:
    settings = TokenSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url="http://[::1]:1/jwks")
    with pytest.raises(ValueError, match="AsyncClient"):
        TokenValidator(settings)
