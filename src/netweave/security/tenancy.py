"""Tenancy: tenants, their users and role bindings; the cached directory; the bootstrap file.

Several SMOs share one O-Cloud through the gateway.  Each is a :class:`Tenant`; the
identities it authenticates as are its :class:`User` records (a subject belongs to at most
one tenant); what an identity may do is given by :class:`RoleBinding` records, which name
a system role (platform-wide) or a tenant role in one tenant.

The records live in a :class:`TenancyStore` shared by the replicas
(:mod:`netweave.store.tenants`).  Authentication reads them on every request through a
:class:`Directory`, an in-memory copy that costs no store round trip in the steady state:
it asks the store for its :meth:`~TenancyStore.generation` at most once per
``refresh_interval`` and reloads the whole :meth:`~TenancyStore.snapshot` only when that
changed.  Tenancy data is small (tenants, users and bindings number in the hundreds), so
a full copy is cheaper and simpler than per-subject lookups.

A YAML bootstrap file (:func:`load_tenancy_file`) seeds the store at start
(:func:`apply_seed`), idempotently, so every replica can apply it.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

import pydantic
import yaml
from pydantic import ConfigDict, Field, field_validator, model_validator

from netweave.errors import BackendUnavailableError, ConflictError
from netweave.models.common import WireModel
from netweave.observability.logging import get_logger
from netweave.security.rbac import ROLES, SYSTEM_ROLES, TENANT_ROLES

__all__ = [
    "RESERVED_TENANT_IDS",
    "TENANT_ID_PATTERN",
    "Directory",
    "Identity",
    "Quotas",
    "RoleBinding",
    "RoleBindingCreate",
    "SeedUser",
    "TenancySeed",
    "TenancySnapshot",
    "TenancyStore",
    "Tenant",
    "TenantCreate",
    "TenantPatch",
    "TenantStatus",
    "User",
    "UserCreate",
    "apply_seed",
    "binding_key",
    "is_tenant_id",
    "load_tenancy_file",
    "parse_tenancy_seed",
    "roles_for",
    "timestamp",
]

_log = get_logger("netweave.tenancy")

#: a tenant id: a DNS label, so it can name Kubernetes objects and labels as it is
TENANT_ID_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
#: ``shared`` marks resource pools every tenant sees; no tenant may be called that
RESERVED_TENANT_IDS: Final = frozenset({"shared"})
_TENANT_ID = re.compile(TENANT_ID_PATTERN)

TenantStatus = Literal["active", "suspended"]


def is_tenant_id(value: str) -> bool:
    """Whether ``value`` is a tenant id a tenant may have (well-formed, not reserved)."""
    return _TENANT_ID.fullmatch(value) is not None and value not in RESERVED_TENANT_IDS


def timestamp(epoch: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, the form of every tenancy timestamp."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _tenant_id(value: str) -> str:
    if _TENANT_ID.fullmatch(value) is None:
        raise ValueError(
            "must be 1-63 lowercase letters, digits or '-', starting and ending with a "
            "letter or digit"
        )
    if value in RESERVED_TENANT_IDS:
        raise ValueError(f"'{value}' is reserved")
    return value


class _Strict(WireModel):
    """Wire models of tenancy take no coercion: ``"10"`` is not a number, ``1`` no string."""

    model_config = ConfigDict(strict=True)


# -- wire models ----------------------------------------------------------------------------


class Quotas(_Strict):
    """Per-tenant limits; ``null`` is no limit (or the gateway default, for the rate)."""

    max_subscriptions: int | None = Field(default=None, ge=0)
    max_resource_pools: int | None = Field(default=None, ge=0)
    requests_per_second: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    burst: int | None = Field(default=None, ge=1)


class TenantCreate(_Strict):
    """A tenant as a client creates it: the id is the client's choice."""

    tenant_id: str = Field(
        examples=["smo-a"],
        json_schema_extra={"pattern": TENANT_ID_PATTERN, "not": {"const": "shared"}},
    )
    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=4096)
    status: TenantStatus = "active"
    quotas: Quotas = Quotas()

    _check_id = field_validator("tenant_id")(_tenant_id)


class Tenant(TenantCreate):
    created_at: str
    updated_at: str


class TenantPatch(_Strict):
    """The members a JSON merge patch of a tenant may carry (documentation and first check)."""

    name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=4096)
    status: TenantStatus | None = None
    quotas: Quotas | None = None


class UserCreate(_Strict):
    """A user as a client adds it to a tenant (the tenant is in the path)."""

    subject: str = Field(
        min_length=1,
        max_length=1024,
        description="The identity the principal authenticates as: a token sub, a certificate "
        "URI SAN (spiffe://...), DNS SAN or subject DN.",
    )
    name: str | None = Field(default=None, max_length=256)


class User(UserCreate):
    user_id: str
    tenant_id: str
    created_at: str


class RoleBindingCreate(_Strict):
    """Grants ``role`` to ``subject``: platform-wide for a system role, in ``tenantId`` for a
    tenant role."""

    subject: str = Field(min_length=1, max_length=1024)
    role: str
    tenant_id: str | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        if value not in ROLES:
            raise ValueError(f"unknown role; one of {', '.join(sorted(ROLES))}")
        return value

    @model_validator(mode="after")
    def _scope_matches_role(self) -> RoleBindingCreate:
        if self.role in TENANT_ROLES and self.tenant_id is None:
            raise ValueError(f"the tenant role {self.role} needs a tenantId")
        if self.role in SYSTEM_ROLES and self.tenant_id is not None:
            raise ValueError(f"the system role {self.role} takes no tenantId")
        if self.tenant_id is not None:
            _tenant_id(self.tenant_id)
        return self


class RoleBinding(RoleBindingCreate):
    role_binding_id: str
    created_at: str


def binding_key(subject: str, role: str, tenant_id: str | None) -> str:
    """What makes a role binding unique.  Role names and tenant ids cannot contain the
    separator (``\\x1f``) and the subject comes last, so distinct triples never collide."""
    return f"{role}\x1f{tenant_id or ''}\x1f{subject}"


@dataclass(frozen=True, slots=True)
class TenancySnapshot:
    """Everything in a tenancy store at one generation, each kind sorted by id."""

    generation: int
    tenants: tuple[Tenant, ...] = ()
    users: tuple[User, ...] = ()
    bindings: tuple[RoleBinding, ...] = ()


# -- the store ------------------------------------------------------------------------------


class TenancyStore(Protocol):
    """Tenants, users and role bindings, shared by the replicas.

    Every change bumps :meth:`generation`.  Uniqueness is atomic across replicas: of two
    concurrent creates of one tenant id, one user subject or one binding, exactly one
    succeeds and the other raises :class:`~netweave.errors.ConflictError`.  Lists are sorted
    by id.  A store that cannot be reached raises
    :class:`~netweave.errors.BackendUnavailableError`.
    """

    async def generation(self) -> int: ...

    async def snapshot(self) -> TenancySnapshot: ...

    async def create_tenant(self, tenant: Tenant) -> None:
        """Add ``tenant``; ConflictError when its id is taken."""
        ...

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def list_tenants(self) -> list[Tenant]: ...

    async def update_tenant(
        self, tenant_id: str, change: Callable[[Tenant], Tenant]
    ) -> Tenant | None:
        """Replace the tenant by ``change(tenant)`` atomically (``change`` may run more than
        once and may raise to abandon the update); None when there is no such tenant.  The
        id cannot change; an unchanged tenant is not written."""
        ...

    async def delete_tenant(self, tenant_id: str) -> bool:
        """Remove the tenant with its users and the role bindings in it (one atomic step)."""
        ...

    async def create_user(self, user: User) -> None:
        """Add ``user``; NotFoundError when its tenant does not exist, ConflictError when its
        subject is a user already (of any tenant) or its id is taken."""
        ...

    async def put_user(self, user: User) -> User:
        """Add ``user``, or give the existing user with its subject ``user``'s tenant and
        name (keeping that user's id and creation time); returns what is stored.
        NotFoundError when the tenant does not exist."""
        ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def user_by_subject(self, subject: str) -> User | None: ...

    async def list_users(self, tenant_id: str) -> list[User]: ...

    async def delete_user(self, user_id: str) -> bool: ...

    async def create_binding(self, binding: RoleBinding) -> None:
        """Add ``binding``; NotFoundError when it names a tenant that does not exist,
        ConflictError for a duplicate (subject, role, tenantId) or a taken id."""
        ...

    async def get_binding(self, binding_id: str) -> RoleBinding | None: ...

    async def list_bindings(self) -> list[RoleBinding]: ...

    async def delete_binding(self, binding_id: str) -> bool: ...


# -- the directory --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """What the tenancy records say about one principal: its user (the first of its names
    that is one) and every role binding of any of its names."""

    user: User | None
    bindings: tuple[RoleBinding, ...]


def roles_for(identity: Identity, tenant: str | None) -> frozenset[str]:
    """The roles ``identity`` holds when acting in ``tenant`` (None: platform scope).

    System-role bindings always count; a tenant-role binding counts only in its tenant.
    """
    return frozenset(
        binding.role
        for binding in identity.bindings
        if binding.tenant_id is None or (tenant is not None and binding.tenant_id == tenant)
    )


@dataclass(frozen=True, slots=True)
class _View:
    """A snapshot indexed for the lookups of the hot path."""

    generation: int
    tenants: Mapping[str, Tenant]
    users: Mapping[str, User]  # by subject
    bindings: Mapping[str, tuple[RoleBinding, ...]]  # by subject

    @classmethod
    def of(cls, snapshot: TenancySnapshot) -> _View:
        bindings: dict[str, list[RoleBinding]] = {}
        for binding in snapshot.bindings:
            bindings.setdefault(binding.subject, []).append(binding)
        return cls(
            generation=snapshot.generation,
            tenants={tenant.tenant_id: tenant for tenant in snapshot.tenants},
            users={user.subject: user for user in snapshot.users},
            bindings={subject: tuple(found) for subject, found in bindings.items()},
        )


class Directory:
    """The tenancy records as authentication reads them, cached in memory.

    The generation is checked at most once per ``refresh_interval`` seconds of ``clock``
    and the snapshot re-read only when it changed, so a change made on another replica is
    seen within about ``refresh_interval``; :meth:`invalidate` makes the next lookup reload
    at once (the service calls it after its own writes).  When the store cannot be reached
    and a copy was loaded before, the copy keeps answering (a warning is logged, the store
    is asked again after ``refresh_interval``): while the store is down nothing can change
    in it, and requests that need no store keep working.  Without a copy the lookup raises
    :class:`~netweave.errors.BackendUnavailableError`.
    """

    def __init__(
        self,
        store: TenancyStore,
        *,
        refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if refresh_interval < 0:
            raise ValueError("refresh_interval must not be negative")
        self._store = store
        self._interval = refresh_interval
        self._clock = clock
        self._view: _View | None = None
        self._checked_at = 0.0
        self._stale = True
        self._lock = asyncio.Lock()
        #: grows whenever the records this directory answers from may have changed
        #: (a reload, or an invalidation); callers caching its answers compare it
        self.revision = 0

    def invalidate(self) -> None:
        """Reload on next use."""
        self._stale = True
        self.revision += 1

    async def identity(self, names: Sequence[str]) -> Identity:
        """The records of a principal known by ``names`` (its identities, preferred first)."""
        view = await self._current()
        user = next((view.users[name] for name in names if name in view.users), None)
        seen: set[str] = set()
        bindings: list[RoleBinding] = []
        for name in names:
            if name not in seen:
                seen.add(name)
                bindings.extend(view.bindings.get(name, ()))
        return Identity(user=user, bindings=tuple(bindings))

    async def tenant(self, tenant_id: str) -> Tenant | None:
        view = await self._current()
        return view.tenants.get(tenant_id)

    def _fresh(self, view: _View | None) -> _View | None:
        if view is None or self._stale or self._clock() - self._checked_at >= self._interval:
            return None
        return view

    async def _current(self) -> _View:
        view = self._fresh(self._view)
        if view is not None:
            return view
        async with self._lock:  # one refresh at a time; the others wait and reuse it
            view = self._fresh(self._view)
            if view is not None:
                return view
            try:
                return await self._refresh()
            except BackendUnavailableError:
                if self._view is None:
                    raise
                _log.warning("tenancy store unavailable; serving the cached tenancy records")
                self._checked_at = self._clock()
                return self._view

    async def _refresh(self) -> _View:
        now = self._clock()
        view = self._view
        if view is not None and not self._stale:
            if await self._store.generation() == view.generation:
                self._checked_at = now
                return view
        self._stale = False  # before the read: an invalidate() during it is kept
        view = _View.of(await self._store.snapshot())
        self._view = view
        self._checked_at = now
        self.revision += 1
        return view


# -- the bootstrap file ---------------------------------------------------------------------


class SeedUser(UserCreate):
    """A user in the bootstrap file, which names its tenant."""

    tenant_id: str

    _check_id = field_validator("tenant_id")(_tenant_id)


@dataclass(frozen=True, slots=True)
class TenancySeed:
    """The content of a bootstrap file, checked."""

    tenants: tuple[TenantCreate, ...] = ()
    users: tuple[SeedUser, ...] = ()
    role_bindings: tuple[RoleBindingCreate, ...] = ()


_SECTIONS: Final = ("tenants", "users", "roleBindings")
_M = TypeVar("_M", bound=pydantic.BaseModel)


def load_tenancy_file(path: str | os.PathLike[str]) -> TenancySeed:
    """Read and check a bootstrap file; ValueError with a one-line message naming the entry
    (``users[0].subject: ...``) when it is not valid.

    Users and role bindings may only name tenants the file defines, so a typo in a tenant
    id is caught here rather than at start-up on some replica.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the tenancy file {os.fspath(path)}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"the tenancy file is not valid YAML: {_one_line(str(exc))}") from None
    return parse_tenancy_seed(data)


def parse_tenancy_seed(data: Any) -> TenancySeed:
    """Check the parsed content of a bootstrap file (see :func:`load_tenancy_file`)."""
    if data is None:
        return TenancySeed()
    if not isinstance(data, dict):
        raise ValueError("the tenancy file must be a mapping of tenants, users and roleBindings")
    for section, entries in data.items():
        if section not in _SECTIONS:
            raise ValueError(f"{section}: unknown section; the sections are {', '.join(_SECTIONS)}")
        if entries is not None and not isinstance(entries, list):
            raise ValueError(f"{section}: must be a list")
    tenants = _entries(data, "tenants", TenantCreate)
    users = _entries(data, "users", SeedUser)
    bindings = _entries(data, "roleBindings", RoleBindingCreate)
    _unique("tenants", ".tenantId", [tenant.tenant_id for tenant in tenants])
    _unique("users", ".subject", [user.subject for user in users])
    _unique("roleBindings", "", [binding_key(b.subject, b.role, b.tenant_id) for b in bindings])
    defined = {tenant.tenant_id for tenant in tenants}
    named: list[tuple[str, int, str | None]]
    named = [("users", i, user.tenant_id) for i, user in enumerate(users)]
    named += [("roleBindings", i, binding.tenant_id) for i, binding in enumerate(bindings)]
    for section, i, tenant_id in named:
        if tenant_id is not None and tenant_id not in defined:
            raise ValueError(f"{section}[{i}].tenantId: the file defines no tenant {tenant_id}")
    return TenancySeed(tenants=tenants, users=users, role_bindings=bindings)


def _entries(data: Mapping[str, Any], section: str, model: type[_M]) -> tuple[_M, ...]:
    parsed: list[_M] = []
    for i, entry in enumerate(data.get(section) or ()):
        try:
            parsed.append(model.model_validate(entry))
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            where = "".join(f".{part}" for part in error["loc"])
            raise ValueError(f"{section}[{i}]{where}: {_one_line(error['msg'])}") from None
    return tuple(parsed)


def _unique(section: str, attribute: str, keys: Iterable[str]) -> None:
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            raise ValueError(f"{section}[{i}]{attribute}: repeats {section}[{first[key]}]")
        first[key] = i


def _one_line(text: str) -> str:
    return " ".join(text.split())


async def apply_seed(
    store: TenancyStore, seed: TenancySeed, *, clock: Callable[[], float] = time.time
) -> None:
    """Write ``seed`` into ``store``, idempotently: tenants are upserted by id (their
    name, description, status and quotas set to the file's), users by subject (moved to
    the file's tenant and renamed if need be), role bindings by (subject, role, tenantId).
    Running it twice, or on two replicas at once, leaves one copy of each; records the file
    does not mention are left alone."""
    now = timestamp(clock())
    for tenant in seed.tenants:
        await _seed_tenant(store, tenant, now)
    for seed_user in seed.users:
        user = User(
            user_id=str(uuid.uuid4()),
            tenant_id=seed_user.tenant_id,
            subject=seed_user.subject,
            name=seed_user.name,
            created_at=now,
        )
        await store.put_user(user)
    for spec in seed.role_bindings:
        binding = RoleBinding(
            role_binding_id=str(uuid.uuid4()),
            subject=spec.subject,
            role=spec.role,
            tenant_id=spec.tenant_id,
            created_at=now,
        )
        try:
            await store.create_binding(binding)
        except ConflictError:
            pass  # there already, from an earlier run or another replica


async def _seed_tenant(store: TenancyStore, spec: TenantCreate, now: str) -> None:
    wanted = spec.model_dump(exclude={"tenant_id"})

    def upsert(current: Tenant) -> Tenant:
        if current.model_dump(include=set(wanted)) == wanted:
            return current
        return current.model_copy(update={**_fields_of(spec), "updated_at": now})

    for _ in range(3):  # a replica may delete it between our two steps; try again
        if await store.update_tenant(spec.tenant_id, upsert) is not None:
            return
        try:
            await store.create_tenant(Tenant(**_fields_of(spec), created_at=now, updated_at=now))
            return
        except ConflictError:
            continue  # created meanwhile by another replica: update it
    raise ConflictError(f"tenant {spec.tenant_id} keeps changing; apply the seed again")


def _fields_of(spec: TenantCreate) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in TenantCreate.model_fields}
