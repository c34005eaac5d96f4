"""Tenancy stores: :class:`InMemoryTenancyStore` (one process) and :class:`RedisTenancyStore`
(replicas), implementing :class:`netweave.security.tenancy.TenancyStore` alike.

Redis layout, under ``{prefix}:tenancy:``::

    tenants        hash    tenantId -> Tenant JSON
    users          hash    userId -> User JSON
    subjects       hash    subject -> userId (a subject is a user of one tenant at most)
    bindings       hash    roleBindingId -> RoleBinding JSON
    binding-keys   hash    binding_key(subject, role, tenantId) -> roleBindingId
    generation     string  INCR on every change

Creates and deletes are Lua scripts, so uniqueness checks and cascades are atomic across
replicas; the read-modify-write updates (:meth:`~RedisTenancyStore.update_tenant`,
:meth:`~RedisTenancyStore.put_user`) are WATCH/MULTI transactions retried on contention.
The scripts read records with ``cjson``; they touch only the fixed keys above, so they
would run on Redis Cluster too, given a hash-tagged prefix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from netweave.errors import ConflictError, NotFoundError
from netweave.security.tenancy import (
    RoleBinding,
    TenancySnapshot,
    Tenant,
    User,
    binding_key,
)
from netweave.store.redis import _guarded

__all__ = ["InMemoryTenancyStore", "RedisTenancyStore"]

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")

#: optimistic transactions give up (409) after this many lost races in a row
_ATTEMPTS = 32


def _no_tenant(tenant_id: str | None) -> NotFoundError:
    return NotFoundError(f"tenant {tenant_id} does not exist")


def _subject_taken() -> ConflictError:
    # never names the tenant the subject belongs to: the caller may not be allowed to know
    return ConflictError("a user with this subject already exists")


def _duplicate_binding() -> ConflictError:
    return ConflictError("an identical role binding (subject, role, tenantId) already exists")


def _changed(tenant_id: str, updated: Tenant) -> Tenant:
    if updated.tenant_id != tenant_id:
        raise ValueError("update_tenant cannot change a tenant's id")
    return updated


def _moved(existing: User, user: User) -> User:
    """The existing user of ``user``'s subject, with ``user``'s tenant and name."""
    return existing.model_copy(update={"tenant_id": user.tenant_id, "name": user.name})


class InMemoryTenancyStore:
    """The tenancy records of one process.  Every method runs without awaiting, so each is
    atomic with respect to the event loop."""

    def __init__(self) -> None:
        self._generation = 0
        self._tenants: dict[str, Tenant] = {}
        self._users: dict[str, User] = {}
        self._subjects: dict[str, str] = {}
        self._bindings: dict[str, RoleBinding] = {}
        self._binding_keys: dict[str, str] = {}

    def _bump(self) -> None:
        self._generation += 1

    async def generation(self) -> int:
        return self._generation

    async def snapshot(self) -> TenancySnapshot:
        return TenancySnapshot(
            generation=self._generation,
            tenants=tuple(_sorted(self._tenants)),
            users=tuple(_sorted(self._users)),
            bindings=tuple(_sorted(self._bindings)),
        )

    async def create_tenant(self, tenant: Tenant) -> None:
        if tenant.tenant_id in self._tenants:
            raise ConflictError(f"tenant {tenant.tenant_id} already exists")
        self._tenants[tenant.tenant_id] = tenant
        self._bump()

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get(tenant_id)

    async def list_tenants(self) -> list[Tenant]:
        return _sorted(self._tenants)

    async def update_tenant(
        self, tenant_id: str, change: Callable[[Tenant], Tenant]
    ) -> Tenant | None:
        current = self._tenants.get(tenant_id)
        if current is None:
            return None
        updated = _changed(tenant_id, change(current))
        if updated != current:
            self._tenants[tenant_id] = updated
            self._bump()
        return updated

    async def delete_tenant(self, tenant_id: str) -> bool:
        if self._tenants.pop(tenant_id, None) is None:
            return False
        for user in [u for u in self._users.values() if u.tenant_id == tenant_id]:
            self._drop_user(user)
        for binding in [b for b in self._bindings.values() if b.tenant_id == tenant_id]:
            self._drop_binding(binding)
        self._bump()
        return True

    async def create_user(self, user: User) -> None:
        if user.tenant_id not in self._tenants:
            raise _no_tenant(user.tenant_id)
        if user.subject in self._subjects:
            raise _subject_taken()
        if user.user_id in self._users:
            raise ConflictError(f"user {user.user_id} already exists")
        self._users[user.user_id] = user
        self._subjects[user.subject] = user.user_id
        self._bump()

    async def put_user(self, user: User) -> User:
        if user.tenant_id not in self._tenants:
            raise _no_tenant(user.tenant_id)
        existing_id = self._subjects.get(user.subject)
        if existing_id is None:
            await self.create_user(user)
            return user
        existing = self._users[existing_id]
        updated = _moved(existing, user)
        if updated != existing:
            self._users[existing_id] = updated
            self._bump()
        return updated

    async def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    async def user_by_subject(self, subject: str) -> User | None:
        user_id = self._subjects.get(subject)
        return None if user_id is None else self._users[user_id]

    async def list_users(self, tenant_id: str) -> list[User]:
        return [user for user in _sorted(self._users) if user.tenant_id == tenant_id]

    async def delete_user(self, user_id: str) -> bool:
        user = self._users.get(user_id)
        if user is None:
            return False
        self._drop_user(user)
        self._bump()
        return True

    async def create_binding(self, binding: RoleBinding) -> None:
        if binding.tenant_id is not None and binding.tenant_id not in self._tenants:
            raise _no_tenant(binding.tenant_id)
        key = binding_key(binding.subject, binding.role, binding.tenant_id)
        if key in self._binding_keys:
            raise _duplicate_binding()
        if binding.role_binding_id in self._bindings:
            raise ConflictError(f"role binding {binding.role_binding_id} already exists")
        self._bindings[binding.role_binding_id] = binding
        self._binding_keys[key] = binding.role_binding_id
        self._bump()

    async def get_binding(self, binding_id: str) -> RoleBinding | None:
        return self._bindings.get(binding_id)

    async def list_bindings(self) -> list[RoleBinding]:
        return _sorted(self._bindings)

    async def delete_binding(self, binding_id: str) -> bool:
        binding = self._bindings.get(binding_id)
        if binding is None:
            return False
        self._drop_binding(binding)
        self._bump()
        return True

    def _drop_user(self, user: User) -> None:
        del self._users[user.user_id]
        if self._subjects.get(user.subject) == user.user_id:
            del self._subjects[user.subject]

    def _drop_binding(self, binding: RoleBinding) -> None:
        del self._bindings[binding.role_binding_id]
        key = binding_key(binding.subject, binding.role, binding.tenant_id)
        if self._binding_keys.get(key) == binding.role_binding_id:
            del self._binding_keys[key]


def _sorted(records: dict[str, _M]) -> list[_M]:
    return [records[key] for key in sorted(records)]


# -- Redis ----------------------------------------------------------------------------------

#: Lua: the binding key of a decoded binding, as :func:`binding_key` builds it
_BINDING_KEY = """
local function binding_key(binding)
  local tenant = binding.tenantId
  if type(tenant) ~= 'string' then tenant = '' end
  return binding.role .. '\\31' .. tenant .. '\\31' .. binding.subject
end
"""

_CREATE_TENANT = """
-- KEYS: tenants, generation; ARGV: tenantId, record
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
"""

_DELETE_TENANT = (
    _BINDING_KEY
    + """
-- KEYS: tenants, users, subjects, bindings, binding-keys, generation; ARGV: tenantId
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local users = redis.call('HGETALL', KEYS[2])
for i = 1, #users, 2 do
  local user = cjson.decode(users[i + 1])
  if user.tenantId == ARGV[1] then
    redis.call('HDEL', KEYS[2], users[i])
    if redis.call('HGET', KEYS[3], user.subject) == users[i] then
      redis.call('HDEL', KEYS[3], user.subject)
    end
  end
end
local bindings = redis.call('HGETALL', KEYS[4])
for i = 1, #bindings, 2 do
  local binding = cjson.decode(bindings[i + 1])
  if binding.tenantId == ARGV[1] then
    redis.call('HDEL', KEYS[4], bindings[i])
    local key = binding_key(binding)
    if redis.call('HGET', KEYS[5], key) == bindings[i] then redis.call('HDEL', KEYS[5], key) end
  end
end
redis.call('INCR', KEYS[6])
return 1
"""
)

_CREATE_USER = """
-- KEYS: tenants, users, subjects, generation; ARGV: userId, subject, tenantId, record
-- returns 0: no such tenant, 1: subject taken, 2: id taken, 3: created
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return 1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 2 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('INCR', KEYS[4])
return 3
"""

_DELETE_USER = """
-- KEYS: users, subjects, generation; ARGV: userId
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local user = cjson.decode(raw)
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], user.subject) == ARGV[1] then
  redis.call('HDEL', KEYS[2], user.subject)
end
redis.call('INCR', KEYS[3])
return 1
"""

_CREATE_BINDING = """
-- KEYS: tenants, bindings, binding-keys, generation; ARGV: id, key, tenantId or '', record
-- returns 0: no such tenant, 1: duplicate, 2: id taken, 3: created
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[3]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return 1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 2 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
redis.call('INCR', KEYS[4])
return 3
"""

_DELETE_BINDING = (
    _BINDING_KEY
    + """
-- KEYS: bindings, binding-keys, generation; ARGV: id
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local key = binding_key(cjson.decode(raw))
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], key) == ARGV[1] then redis.call('HDEL', KEYS[2], key) end
redis.call('INCR', KEYS[3])
return 1
"""
)


def _dump(model: BaseModel) -> bytes:
    return model.model_dump_json(by_alias=True).encode()


def _load(model: type[_M], raw: bytes | str | None) -> _M | None:
    return None if raw is None else model.model_validate_json(raw)


def _load_all(model: type[_M], raw: dict[Any, Any]) -> list[_M]:
    """The records of a hash, sorted by id (hash keys come back as bytes or str)."""
    by_key = {key.decode() if isinstance(key, bytes) else key: value for key, value in raw.items()}
    return [model.model_validate_json(by_key[key]) for key in sorted(by_key)]


class RedisTenancyStore:
    """The tenancy records in Redis, shared by the replicas.  The caller owns ``client``
    (either ``decode_responses`` setting works) and closes it."""

    def __init__(self, client: Redis, *, prefix: str) -> None:
        if not prefix or any(c.isspace() for c in prefix):
            raise ValueError(f"invalid key prefix {prefix!r}")
        self._redis = client
        base = f"{prefix}:tenancy"
        self._tenants = f"{base}:tenants"
        self._users = f"{base}:users"
        self._subjects = f"{base}:subjects"
        self._bindings = f"{base}:bindings"
        self._binding_keys = f"{base}:binding-keys"
        self._generation = f"{base}:generation"
        script = client.register_script
        self._create_tenant = script(_CREATE_TENANT)
        self._delete_tenant = script(_DELETE_TENANT)
        self._create_user = script(_CREATE_USER)
        self._delete_user = script(_DELETE_USER)
        self._create_binding = script(_CREATE_BINDING)
        self._delete_binding = script(_DELETE_BINDING)

    @_guarded
    async def generation(self) -> int:
        return int(await self._redis.get(self._generation) or 0)

    @_guarded
    async def snapshot(self) -> TenancySnapshot:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._generation)
            pipe.hgetall(self._tenants)
            pipe.hgetall(self._users)
            pipe.hgetall(self._bindings)
            generation, tenants, users, bindings = await pipe.execute()
        return TenancySnapshot(
            generation=int(generation or 0),
            tenants=tuple(_load_all(Tenant, tenants)),
            users=tuple(_load_all(User, users)),
            bindings=tuple(_load_all(RoleBinding, bindings)),
        )

    # -- tenants ---------------------------------------------------------------------------

    @_guarded
    async def create_tenant(self, tenant: Tenant) -> None:
        created = await self._create_tenant(
            keys=[self._tenants, self._generation], args=[tenant.tenant_id, _dump(tenant)]
        )
        if not int(created):
            raise ConflictError(f"tenant {tenant.tenant_id} already exists")

    @_guarded
    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return _load(Tenant, await self._redis.hget(self._tenants, tenant_id))

    @_guarded
    async def list_tenants(self) -> list[Tenant]:
        return _load_all(Tenant, await self._redis.hgetall(self._tenants))

    @_guarded
    async def update_tenant(
        self, tenant_id: str, change: Callable[[Tenant], Tenant]
    ) -> Tenant | None:
        async def attempt(pipe: Pipeline) -> Tenant | None:
            await pipe.watch(self._tenants)
            current = _load(Tenant, await pipe.hget(self._tenants, tenant_id))
            if current is None:
                return None
            updated = _changed(tenant_id, change(current))
            if updated == current:
                return current
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.hset(self._tenants, tenant_id, _dump(updated))
            pipe.incr(self._generation)
            await pipe.execute()
            return updated

        return await self._optimistic(attempt)

    @_guarded
    async def delete_tenant(self, tenant_id: str) -> bool:
        keys = [
            self._tenants,
            self._users,
            self._subjects,
            self._bindings,
            self._binding_keys,
            self._generation,
        ]
        return bool(int(await self._delete_tenant(keys=keys, args=[tenant_id])))

    # -- users -----------------------------------------------------------------------------

    @_guarded
    async def create_user(self, user: User) -> None:
        status = int(
            await self._create_user(
                keys=[self._tenants, self._users, self._subjects, self._generation],
                args=[user.user_id, user.subject, user.tenant_id, _dump(user)],
            )
        )
        if status == 0:
            raise _no_tenant(user.tenant_id)
        if status == 1:
            raise _subject_taken()
        if status == 2:
            raise ConflictError(f"user {user.user_id} already exists")

    @_guarded
    async def put_user(self, user: User) -> User:
        async def attempt(pipe: Pipeline) -> User:
            await pipe.watch(self._tenants, self._users, self._subjects)
            if not await pipe.hexists(self._tenants, user.tenant_id):
                raise _no_tenant(user.tenant_id)
            existing_id = await pipe.hget(self._subjects, user.subject)
            existing = None
            if existing_id is not None:
                existing = _load(User, await pipe.hget(self._users, existing_id))
            stored = user if existing is None else _moved(existing, user)
            if stored == existing:
                return stored
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.hset(self._users, stored.user_id, _dump(stored))
            pipe.hset(self._subjects, stored.subject, stored.user_id)
            pipe.incr(self._generation)
            await pipe.execute()
            return stored

        return await self._optimistic(attempt)

    @_guarded
    async def get_user(self, user_id: str) -> User | None:
        return _load(User, await self._redis.hget(self._users, user_id))

    @_guarded
    async def user_by_subject(self, subject: str) -> User | None:
        user_id = await self._redis.hget(self._subjects, subject)
        if user_id is None:
            return None
        return _load(User, await self._redis.hget(self._users, user_id))

    @_guarded
    async def list_users(self, tenant_id: str) -> list[User]:
        users = _load_all(User, await self._redis.hgetall(self._users))
        return [user for user in users if user.tenant_id == tenant_id]

    @_guarded
    async def delete_user(self, user_id: str) -> bool:
        keys = [self._users, self._subjects, self._generation]
        return bool(int(await self._delete_user(keys=keys, args=[user_id])))

    # -- role bindings ---------------------------------------------------------------------

    @_guarded
    async def create_binding(self, binding: RoleBinding) -> None:
        key = binding_key(binding.subject, binding.role, binding.tenant_id)
        status = int(
            await self._create_binding(
                keys=[self._tenants, self._bindings, self._binding_keys, self._generation],
                args=[binding.role_binding_id, key, binding.tenant_id or "", _dump(binding)],
            )
        )
        if status == 0:
            raise _no_tenant(binding.tenant_id)
        if status == 1:
            raise _duplicate_binding()
        if status == 2:
            raise ConflictError(f"role binding {binding.role_binding_id} already exists")

    @_guarded
    async def get_binding(self, binding_id: str) -> RoleBinding | None:
        return _load(RoleBinding, await self._redis.hget(self._bindings, binding_id))

    @_guarded
    async def list_bindings(self) -> list[RoleBinding]:
        return _load_all(RoleBinding, await self._redis.hgetall(self._bindings))

    @_guarded
    async def delete_binding(self, binding_id: str) -> bool:
        keys = [self._bindings, self._binding_keys, self._generation]
        return bool(int(await self._delete_binding(keys=keys, args=[binding_id])))

    # -- helpers ---------------------------------------------------------------------------

    async def _optimistic(self, attempt: Callable[[Pipeline], Awaitable[_T]]) -> _T:
        """Run a WATCH/MULTI ``attempt`` until no watched key changed under it."""
        for _ in range(_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    return await attempt(pipe)
                except WatchError:
                    continue
        raise ConflictError("the tenancy records keep changing under this update; retry")
