"""OAuth2 bearer tokens: JWT validation and the mapping of claims to a :class:`Principal`.

:class:`TokenValidator` turns an ``Authorization: Bearer <jwt>`` header into a
principal or raises :class:`~netweave.errors.UnauthenticatedError` carrying an RFC 6750
``WWW-Authenticate`` challenge.  The defences against the classic JWT mistakes:

* ``alg`` must be in the configured allow-list, which may only name asymmetric
  algorithms (``none`` and ``HS*`` are refused when :class:`TokenSettings` is built);
* keys are held as ``cryptography`` public-key objects only (never bytes or PEM text),
  and PyJWT is always called with an explicit ``algorithms=`` list narrowed to those the
  key can serve, so an HS256 token "signed" with the public key as an HMAC secret can
  never verify;
* issuer, audience, expiry, not-before and subject are required and checked (with
  ``leeway``), and only after the signature has verified.

Keys come from a JWKS URL (fetched with an injected :class:`httpx.AsyncClient`, cached
for ``jwks_cache_ttl``, refetched at most once per ``jwks_refresh_interval`` when a token
names an unknown ``kid``) and/or from files (PEM public keys or certificates, or JWKS
JSON documents).

Verifying a signature costs 50-200 µs, and a client sends the same token with every
request until it expires, so the principals of verified tokens are cached (by the SHA-256
of the token, so the cache holds 32 bytes per token whatever the token's size) for
``token_cache_ttl`` seconds, never past the token's ``exp``.  Only tokens that verified are
cached, never a failure, so a forged token -- even one differing from a cached token in
its last character -- always meets the full check.  A hit past ``exp`` is dropped: beyond
the ``leeway`` it is refused as expired, as PyJWT would (``exp`` is wall-clock epoch
seconds), and within it the token is verified again.  A JWKS refresh that withdraws a key
empties the cache, so a retired key stops vouching at once rather than ``token_cache_ttl``
later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from netweave.errors import BackendUnavailableError, UnauthenticatedError
from netweave.observability.logging import get_logger
from netweave.security.principal import Principal
from netweave.security.rbac import ROLES

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_ROLE_MAP",
    "TokenSettings",
    "TokenValidator",
]

_log = get_logger("netweave.security.tokens")

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
#: every algorithm the allow-list may name
ASYMMETRIC_ALGORITHMS = _RSA_ALGORITHMS | frozenset(_EC_ALGORITHMS.values()) | {"EdDSA"}

#: O2-IMS SMOs commonly send these roles (as ``role:<name>`` scopes)
DEFAULT_ROLE_MAP: Mapping[str, str] = MappingProxyType(
    {"o2ims-admin": "platform-admin", "o2ims-reader": "viewer", "o2ims-subscriber": "operator"}
)

_MIN_RSA_BITS = 2048
#: a bearer token longer than this is refused before any parsing
_MAX_TOKEN_CHARS = 16 * 1024
#: a JWKS document larger than this is refused
_MAX_JWKS_BYTES = 1024 * 1024
#: the JWS compact serialisation: three base64url segments
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_REALM = "netweave"
#: JWK ``kty`` -> the parser of such keys; symmetric ``oct`` keys are deliberately absent
_JWK_PARSERS: Mapping[str, Callable[[dict[str, Any]], object]] = {
    "RSA": RSAAlgorithm.from_jwk,
    "EC": ECAlgorithm.from_jwk,
    "OKP": OKPAlgorithm.from_jwk,
}


@dataclass(frozen=True)
class TokenSettings:
    """How bearer tokens are validated and mapped to principals."""

    issuer: str
    """The required ``iss`` claim."""
    audience: str | tuple[str, ...]
    """The ``aud`` claim must name this audience (or one of these)."""
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    """The accepted ``alg`` header values; asymmetric algorithms only."""
    jwks_url: str | None = None
    """Where to fetch the signing keys (https, or http on a loopback address)."""
    key_files: tuple[Path, ...] = ()
    """PEM public keys or certificates, or JWKS JSON documents."""
    leeway: float = 30.0
    """Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
    jwks_cache_ttl: float = 300.0
    """Seconds a fetched JWKS is used before it is fetched again."""
    jwks_refresh_interval: float = 10.0
    """Minimum seconds between two JWKS fetches (an unknown ``kid`` triggers one)."""
    jwks_timeout: float = 5.0
    """Seconds a JWKS fetch may take."""
    token_cache_ttl: float = 60.0
    """Seconds a verified token is answered from the cache (never past its ``exp``);
    0 disables the cache."""
    token_cache_size: int = 10_000
    """Verified tokens the cache holds at most (least recently used dropped first);
    0 disables the cache."""
    tenant_claim: str = "tenant"
    """The claim naming the principal's tenant; a dotted path reaches into objects."""
    roles_claim: str = "roles"
    """The claim listing role names (a list, or a space-separated string)."""
    scope_claim: str = "scope"
    """The OAuth2 scope claim; scopes starting with ``scope_role_prefix`` name roles."""
    scope_role_prefix: str = "role:"
    role_map: Mapping[str, str] = field(default_factory=lambda: DEFAULT_ROLE_MAP)
    """Token role names to netweave role names; role names not in it are ignored."""

    def __post_init__(self) -> None:
        algorithms = tuple(self.algorithms)
        if not algorithms:
            raise ValueError("at least one token algorithm must be allowed")
        refused = [alg for alg in algorithms if alg not in ASYMMETRIC_ALGORITHMS]
        if refused:
            raise ValueError(
                f"token algorithms {refused} are not allowed: only asymmetric algorithms "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}) may be configured"
            )
        if not self.issuer:
            raise ValueError("the token issuer must be configured")
        audience = (self.audience,) if isinstance(self.audience, str) else tuple(self.audience)
        if not audience or not all(audience):
            raise ValueError("the token audience must be configured")
        if self.jwks_url is None and not self.key_files:
            raise ValueError("token validation needs a jwks_url or key_files")
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        unknown_roles = sorted(set(self.role_map.values()) - ROLES)
        if unknown_roles:
            raise ValueError(f"role_map names unknown netweave roles {unknown_roles}")
        for name in (
            "leeway",
            "jwks_cache_ttl",
            "jwks_refresh_interval",
            "jwks_timeout",
            "token_cache_ttl",
            "token_cache_size",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        object.__setattr__(self, "algorithms", algorithms)
        if not isinstance(self.audience, str):
            object.__setattr__(self, "audience", audience)
        object.__setattr__(self, "key_files", tuple(Path(p) for p in self.key_files))
        object.__setattr__(self, "role_map", MappingProxyType(dict(self.role_map)))


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname is not None:
        if parts.hostname == "localhost":
            return
        with contextlib.suppress(ValueError):  # a host name, not an address
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return
    raise ValueError("jwks_url must be https (plain http is accepted on loopback only)")


@dataclass(frozen=True)
class _Key:
    kid: str | None
    key: PublicKey
    algorithms: frozenset[str]


def _challenge(description: str | None) -> dict[str, str]:
    if description is None:  # RFC 6750 §3.1: no error code when no credentials were sent
        return {"WWW-Authenticate": f'Bearer realm="{_REALM}"'}
    assert '"' not in description
    assert "\\" not in description
    return {
        "WWW-Authenticate": (
            f'Bearer realm="{_REALM}", error="invalid_token", error_description="{description}"'
        )
    }


def _reject(description: str) -> UnauthenticatedError:
    """The error for a bad token; ``description`` is fixed text, never token content."""
    _log.info("bearer token rejected", reason=description)
    return UnauthenticatedError(
        f"invalid bearer token: {description}", headers=_challenge(description)
    )


def _key_algorithms(key: PublicKey) -> frozenset[str]:
    """The JWS algorithms ``key`` can verify."""
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS if key.key_size >= _MIN_RSA_BITS else frozenset()
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    return frozenset({"EdDSA"})


def _as_public_key(key: object) -> PublicKey | None:
    if isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        key = key.public_key()
    if isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    return None


def _make_key(
    kid: str | None, raw: object, allowed: Iterable[str], declared_alg: object, source: str
) -> _Key | None:
    key = _as_public_key(raw)
    if key is None:
        _log.warning("signing key ignored: not an asymmetric public key", source=source, kid=kid)
        return None
    algorithms = _key_algorithms(key) & frozenset(allowed)
    if isinstance(declared_alg, str):
        algorithms &= {declared_alg}
    if not algorithms:
        _log.warning("signing key ignored: no allowed algorithm fits it", source=source, kid=kid)
        return None
    return _Key(kid=kid, key=key, algorithms=algorithms)


def _parse_jwks(document: object, allowed: Sequence[str], source: str) -> list[_Key]:
    """The usable signature keys of a JWKS document; symmetric and broken keys are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{source} is not a JWKS document")
    keys: list[_Key] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        kid = kid if isinstance(kid, str) else None
        if jwk.get("use", "sig") != "sig":
            continue
        kty = jwk.get("kty")
        parser: Callable[[dict[str, Any]], object] | None = _JWK_PARSERS.get(
            kty if isinstance(kty, str) else ""
        )
        if parser is None:
            _log.warning("signing key ignored: unsupported key type", source=source, kid=kid)
            continue
        try:
            raw = parser(jwk)
        except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            _log.warning("signing key ignored: malformed JWK", source=source, kid=kid)
            continue
        key = _make_key(kid, raw, allowed, jwk.get("alg"), source)
        if key is not None:
            keys.append(key)
    return keys


def _load_key_file(path: Path, allowed: Sequence[str]) -> list[_Key]:
    data = path.read_bytes()
    source = str(path)
    if data.lstrip().startswith(b"{"):
        return _parse_jwks(json.loads(data), allowed, source)
    if b"-----BEGIN CERTIFICATE-----" in data:
        raw: object = x509.load_pem_x509_certificate(data).public_key()
    else:
        raw = load_pem_public_key(data)
    key = _make_key(None, raw, allowed, None, source)
    if key is None:
        raise ValueError(f"{source} holds no key usable with the allowed token algorithms")
    return [key]


def _claim(claims: Mapping[str, Any], path: str) -> object:
    """The claim at ``path``: a top-level name, or a dotted path into nested objects."""
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _names(value: object) -> list[str] | None:
    """A list of names from a space-separated string or a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


class _VerifiedTokens:
    """Principals of verified tokens by the SHA-256 of the token: a bounded LRU map.

    Each entry is ``(principal, exp, until)``: ``until`` is when the entry stops answering,
    the earlier of ``exp`` and the time it was added plus ``ttl`` (wall-clock seconds).
    """

    def __init__(self, *, size: int, ttl: float) -> None:
        self._size = size
        self._ttl = ttl
        self._entries: OrderedDict[bytes, tuple[Principal, int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> tuple[Principal, int, float] | None:
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
        return entry

    def put(self, digest: bytes, principal: Principal, exp: int, now: float) -> None:
        until = min(float(exp), now + self._ttl)
        if until <= now:  # expired (within the leeway) already: verify it every time
            return
        self._entries[digest] = (principal, exp, until)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def discard(self, digest: bytes) -> None:
        self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()


class TokenValidator:
    """Validates bearer tokens against the configured keys and maps them to principals.

    ``http`` is used only for JWKS fetches and is owned by the caller.  ``clock`` is the
    monotonic clock governing the JWKS cache, ``wall_clock`` the epoch clock against which
    cached tokens' ``exp`` is checked (both injectable for tests).
    """

    def __init__(
        self,
        settings: TokenSettings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.jwks_url is not None and http is None:
            raise ValueError("an httpx.AsyncClient is needed to fetch the JWKS")
        self._settings = settings
        self._http = http
        self._clock = clock
        self._wall_clock = wall_clock
        self._verified = (
            _VerifiedTokens(size=settings.token_cache_size, ttl=settings.token_cache_ttl)
            if settings.token_cache_size > 0 and settings.token_cache_ttl > 0
            else None
        )
        self._audience: str | list[str] = (
            settings.audience if isinstance(settings.audience, str) else list(settings.audience)
        )
        self._file_keys: list[_Key] = []
        for path in settings.key_files:
            self._file_keys.extend(_load_key_file(path, settings.algorithms))
        self._jwks_keys: list[_Key] = []
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch attempt
        self._lock = asyncio.Lock()
        #: JWKS fetches made, successful or not
        self.fetches = 0

    async def principal(self, authorization_header: str | None) -> Principal:
        """The principal an ``Authorization`` header proves, or :class:`UnauthenticatedError`."""
        token = self._bearer(authorization_header)
        if self._verified is None:
            return await self._validate(token)
        digest = hashlib.sha256(token.encode()).digest()
        now = self._wall_clock()
        entry = self._verified.get(digest)
        if entry is not None:
            principal, exp, until = entry
            if now < until:
                return principal
            self._verified.discard(digest)
            if exp <= now - self._settings.leeway:  # PyJWT's own test
                raise _reject("token expired")
        principal = await self._validate(token)
        self._verified.put(digest, principal, int(principal.claims["exp"]), now)
        return principal

    async def _validate(self, token: str) -> Principal:
        """The full check of a well-formed bearer token: signature, claims, mapping."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _reject("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._settings.algorithms:
            raise _reject("token algorithm not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _reject("malformed token")
        keys = await self._candidates(kid, alg)
        claims = self._verify(token, alg, keys)
        return self._to_principal(claims)

    # -- the header ----------------------------------------------------------------------

    @staticmethod
    def _bearer(authorization_header: str | None) -> str:
        if authorization_header is None or not authorization_header.strip():
            raise UnauthenticatedError("authentication required", headers=_challenge(None))
        scheme, _, credentials = authorization_header.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise _reject("Authorization header must use the Bearer scheme")
        token = credentials.strip()
        if len(token) > _MAX_TOKEN_CHARS or not _COMPACT_JWS.fullmatch(token):
            raise _reject("malformed token")
        return token

    # -- keys ----------------------------------------------------------------------------

    def _stale(self) -> bool:
        return self._fetched_at is None or (
            self._clock() - self._fetched_at >= self._settings.jwks_cache_ttl
        )

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or (
            self._clock() - self._attempted_at >= self._settings.jwks_refresh_interval
        )

    async def _refresh(self, due: Callable[[], bool]) -> None:
        """Fetch the JWKS when ``due()`` and the refresh interval allow; one fetch at a time."""
        if self._settings.jwks_url is None or not (due() and self._may_fetch()):
            return
        async with self._lock:
            if due() and self._may_fetch():  # another request may have fetched meanwhile
                await self._fetch(self._settings.jwks_url)

    async def _fetch(self, url: str) -> None:
        assert self._http is not None
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            response = await self._http.get(
                url,
                headers={"Accept": "application/json"},
                timeout=self._settings.jwks_timeout,
                follow_redirects=False,
            )
            if response.status_code != 200:
                raise ValueError(f"JWKS endpoint answered {response.status_code}")
            if len(response.content) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            keys = _parse_jwks(response.json(), self._settings.algorithms, url)
        except (httpx.HTTPError, ValueError) as exc:
            _log.warning("JWKS fetch failed; keeping the keys held", url=url, error=str(exc))
            return
        if self._verified is not None and any(key not in keys for key in self._jwks_keys):
            self._verified.clear()  # a withdrawn key vouches for no cached token any more
        self._jwks_keys = keys
        self._fetched_at = self._clock()
        _log.info("JWKS fetched", url=url, keys=len(keys))

    def _lookup(self, kid: str) -> _Key | None:
        for key in [*self._file_keys, *self._jwks_keys]:
            if key.kid == kid:
                return key
        return None

    async def _candidates(self, kid: str | None, alg: str) -> list[_Key]:
        await self._refresh(self._stale)
        if kid is None:
            found = [*self._file_keys, *self._jwks_keys]
        else:
            key = self._lookup(kid)
            if key is None:
                await self._refresh(lambda: self._lookup(kid) is None)
                key = self._lookup(kid)
            # keys from PEM files carry no kid and are trusted whatever kid a token names
            found = [key] if key is not None else [k for k in self._file_keys if k.kid is None]
        if not found:
            if self._settings.jwks_url is not None and self._fetched_at is None:
                raise BackendUnavailableError(
                    "the token signing keys are unavailable",
                    retry_after=max(1, round(self._settings.jwks_refresh_interval)),
                )
            raise _reject("unknown signing key" if kid is not None else "no signing key")
        usable = [key for key in found if alg in key.algorithms]
        if not usable:
            raise _reject("token algorithm does not match the signing key")
        return usable

    # -- verification --------------------------------------------------------------------

    def _verify(self, token: str, alg: str, keys: Sequence[_Key]) -> dict[str, Any]:
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[alg],  # one asymmetric algorithm the key serves
                    audience=self._audience,
                    issuer=self._settings.issuer,
                    leeway=self._settings.leeway,
                    options={"require": ["exp", "iss", "aud", "sub"]},
                )
            except jwt.InvalidSignatureError:
                continue  # try the next key that fits (tokens without kid)
            except jwt.ExpiredSignatureError:
                raise _reject("token expired") from None
            except jwt.ImmatureSignatureError:
                raise _reject("token not yet valid") from None
            except jwt.InvalidAudienceError:
                raise _reject("token audience not accepted") from None
            except jwt.InvalidIssuerError:
                raise _reject("token issuer not accepted") from None
            except jwt.MissingRequiredClaimError as exc:
                raise _reject(f"token lacks the {exc.claim} claim") from None
            except jwt.InvalidAlgorithmError:
                raise _reject("token algorithm not accepted") from None
            except jwt.InvalidTokenError:
                raise _reject("malformed token") from None
        raise _reject("signature verification failed")

    def _to_principal(self, claims: dict[str, Any]) -> Principal:
        settings = self._settings
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _reject("token subject malformed")
        tenant = _claim(claims, settings.tenant_claim)
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise _reject("token tenant claim malformed")
        roles = _names(_claim(claims, settings.roles_claim))
        scopes = _names(_claim(claims, settings.scope_claim))
        if roles is None or scopes is None:
            raise _reject("token roles or scope claim malformed")
        prefix = settings.scope_role_prefix
        names = [*roles, *(s[len(prefix) :] for s in scopes if s.startswith(prefix))]
        mapped = frozenset(settings.role_map[n] for n in names if n in settings.role_map)
        return Principal(
            subject=subject,
            tenant=tenant,
            roles=mapped,
            auth=frozenset({"token"}),
            claims=MappingProxyType(claims),
        )
