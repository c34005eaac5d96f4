"""The Redis data layout of :class:`netweave.store.redis.RedisStore`: the keys, every one
under one prefix, and the Lua scripts that change them atomically.

With the default prefix ``netweave``::

    netweave:subscriptions                  hash    subscription id -> record (JSON)
    netweave:subscriptions:order            zset    subscription id, scored by the generation
                                                    that added it (insertion order)
    netweave:subscriptions:unique           hash    digest of callback+filter -> subscription id
    netweave:subscriptions:digest           hash    subscription id -> digest of callback+filter
    netweave:subscriptions:generation       string  INCR on every add, replace and remove
    netweave:outbox:{subscription}          stream  that subscription's deliveries, oldest
                                                    first, with the consumer group ``workers``
    netweave:attempt:{subscription}         hash    state of the head delivery once taken:
                                                    id, worker (its consumer in the group),
                                                    attempts, first (epoch s), error
    netweave:due                            zset    subscriptions with a delivery to hand
                                                    out, scored by when it is due
    netweave:inflight                       zset    subscriptions with a delivery in flight,
                                                    scored by its visibility deadline
    netweave:depth                          string  deliveries pending or in flight
    netweave:dead                           stream  dead letters
    netweave:lease:{name}:holder            string  the holder, with a PX expiry
    netweave:lease:{name}:epoch             string  fencing token, INCR on a change of holder
    netweave:alarms:subscription            hash    alarm subscription id -> record; kept by
                                                    netweave.store.alarms, read by replay

Invariants the scripts keep: a subscription is in at most one of ``due`` and ``inflight``;
the pending-entries list of an outbox stream holds at most its first entry (the head being
delivered), and the group's only consumer is that head's holder, so consumers of vanished
replicas do not pile up; ``depth`` is the sum of the outbox streams' lengths.  The scripts
take the fixed keys as KEYS and build per-subscription keys from the prefixes in ARGV,
which is fine on a standalone or Sentinel-managed Redis (not on Redis Cluster).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACQUIRE",
    "ADD_SUBSCRIPTION",
    "COMPLETE",
    "DEAD_LETTER",
    "ENQUEUE",
    "GROUP",
    "RELEASE",
    "REMOVE_SUBSCRIPTION",
    "REPLACE_SUBSCRIPTION",
    "REPLAY",
    "RETRY_LATER",
    "TAKE",
    "Keys",
]

#: the consumer group of every outbox stream
GROUP = "workers"


@dataclass(frozen=True, slots=True)
class Keys:
    """Names of the keys of one store, all starting with ``{prefix}:``."""

    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise ValueError(f"invalid key prefix {self.prefix!r}")

    @property
    def pattern(self) -> str:
        """A SCAN/KEYS pattern matching every key of this store."""
        return f"{self.prefix}:*"

    @property
    def subscriptions(self) -> str:
        return f"{self.prefix}:subscriptions"

    @property
    def subscription_order(self) -> str:
        return f"{self.prefix}:subscriptions:order"

    @property
    def subscription_unique(self) -> str:
        return f"{self.prefix}:subscriptions:unique"

    @property
    def subscription_digest(self) -> str:
        return f"{self.prefix}:subscriptions:digest"

    @property
    def generation(self) -> str:
        return f"{self.prefix}:subscriptions:generation"

    @property
    def outbox_prefix(self) -> str:
        """``outbox(subscription)`` is this followed by the subscription id."""
        return f"{self.prefix}:outbox:"

    def outbox(self, subscription_id: str) -> str:
        return self.outbox_prefix + subscription_id

    @property
    def attempt_prefix(self) -> str:
        """``attempt(subscription)`` is this followed by the subscription id."""
        return f"{self.prefix}:attempt:"

    def attempt(self, subscription_id: str) -> str:
        return self.attempt_prefix + subscription_id

    @property
    def due(self) -> str:
        return f"{self.prefix}:due"

    @property
    def inflight(self) -> str:
        return f"{self.prefix}:inflight"

    @property
    def depth(self) -> str:
        return f"{self.prefix}:depth"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def alarm_subscriptions(self) -> str:
        """The alarm subscriptions (:mod:`netweave.store.alarms`): they share the outbox."""
        return f"{self.prefix}:alarms:subscription"

    def lease_holder(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}:holder"

    def lease_epoch(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}:epoch"

    def memo(self, key: str) -> str:
        return f"{self.prefix}:memo:{key}"


# -- the Lua scripts that change the layout atomically ------------------------------------

ADD_SUBSCRIPTION = """
-- KEYS: subscriptions, order, unique, digest, generation; ARGV: id, record, digest
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  if existing == ARGV[2] then return {1} end  -- a retried add that had succeeded
  return {2}
end
local owner = redis.call('HGET', KEYS[3], ARGV[3])
if owner then return {0, owner} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[5]), ARGV[1])
return {1}
"""

REPLACE_SUBSCRIPTION = """
-- KEYS: subscriptions, unique, digest, generation; ARGV: id, record, digest
-- returns {1} replaced, {0} no such subscription, {2, owner} another id holds the digest
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {0} end
local owner = redis.call('HGET', KEYS[2], ARGV[3])
if owner and owner ~= ARGV[1] then return {2, owner} end
local old = redis.call('HGET', KEYS[3], ARGV[1])
if old and old ~= ARGV[3] and redis.call('HGET', KEYS[2], old) == ARGV[1] then
  redis.call('HDEL', KEYS[2], old)
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[4])
return {1}
"""

REMOVE_SUBSCRIPTION = """
-- KEYS: subscriptions, order, unique, digest, generation, due, inflight, depth, outbox,
--       attempt; ARGV: id
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
if existed == 1 then
  local digest = redis.call('HGET', KEYS[4], ARGV[1])
  if digest and redis.call('HGET', KEYS[3], digest) == ARGV[1] then
    redis.call('HDEL', KEYS[3], digest)
  end
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('INCR', KEYS[5])
end
local pending = redis.call('XLEN', KEYS[9])
if pending > 0 then redis.call('DECRBY', KEYS[8], pending) end
redis.call('DEL', KEYS[9], KEYS[10])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
return existed
"""

ENQUEUE = """
-- KEYS: due, inflight, depth; ARGV: outbox prefix, group, now, then per delivery:
--       subscription, meta, body
local ids = {}
for i = 4, #ARGV, 3 do
  local sub = ARGV[i]
  local stream = ARGV[1] .. sub
  local fresh = redis.call('EXISTS', stream) == 0
  ids[#ids + 1] = redis.call('XADD', stream, '*', 'meta', ARGV[i + 1], 'body', ARGV[i + 2])
  if fresh then redis.call('XGROUP', 'CREATE', stream, ARGV[2], '0') end
  if not redis.call('ZSCORE', KEYS[2], sub) then
    redis.call('ZADD', KEYS[1], 'NX', ARGV[3], sub)
  end
end
redis.call('INCRBY', KEYS[3], #ids)
return ids
"""

TAKE = """
-- KEYS: due, inflight; ARGV: outbox prefix, attempt prefix, group, worker, now,
--       visibility deadline, limit
-- returns {next due time, next visibility deadline, taken...}, each taken
-- {subscription, id, fields, attempts, first attempt, last error}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'WITHSCORES')
for i = 1, #expired, 2 do
  redis.call('ZREM', KEYS[2], expired[i])
  redis.call('ZADD', KEYS[1], expired[i + 1], expired[i])
end
local limit = tonumber(ARGV[7])
local taken = {}
while #taken < limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5], 'LIMIT', 0,
                           limit - #taken)
  if #batch == 0 then break end
  for _, sub in ipairs(batch) do
    redis.call('ZREM', KEYS[1], sub)
    local stream = ARGV[1] .. sub
    local entry = nil
    if redis.call('EXISTS', stream) == 1 then
      -- a head still pending (retried, or its worker vanished) is claimed from its holder
      local claimed = redis.call('XAUTOCLAIM', stream, ARGV[3], ARGV[4], 0, '0-0', 'COUNT', 1)
      entry = claimed[2][1]
      if not entry then
        local read = redis.call('XREADGROUP', 'GROUP', ARGV[3], ARGV[4], 'COUNT', 1,
                                'STREAMS', stream, '>')
        if read then entry = read[1][2][1] end
      end
      if not entry then redis.call('XGROUP', 'DELCONSUMER', stream, ARGV[3], ARGV[4]) end
    end
    if entry then
      local attempt = ARGV[2] .. sub
      local known = redis.call('HMGET', attempt, 'id', 'worker')
      if known[1] ~= entry[1] then
        redis.call('DEL', attempt)
        redis.call('HSET', attempt, 'id', entry[1], 'attempts', 0, 'first', ARGV[5])
      elseif known[2] and known[2] ~= ARGV[4] then
        -- the previous holder has nothing pending here any more
        redis.call('XGROUP', 'DELCONSUMER', stream, ARGV[3], known[2])
      end
      redis.call('HSET', attempt, 'worker', ARGV[4])
      redis.call('ZADD', KEYS[2], ARGV[6], sub)
      local state = redis.call('HMGET', attempt, 'attempts', 'first', 'error')
      taken[#taken + 1] = {sub, entry[1], entry[2], state[1], state[2], state[3]}
    end
  end
end
local due = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local flight = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local reply = {due[2] or false, flight[2] or false}
for _, item in ipairs(taken) do reply[#reply + 1] = item end
return reply
"""

#: shared by the scripts that end a flight: unless delivery ARGV[3] of subscription ARGV[2]
#: is the one in flight, do nothing
_IN_FLIGHT = """
if not redis.call('ZSCORE', KEYS[2], ARGV[2])
    or redis.call('HGET', KEYS[5], 'id') ~= ARGV[3] then
  return false
end
"""

#: shared by complete and dead_letter: forget the head and its holder (a consumer of the
#: group with nothing pending any more), release the subscription, reschedule what is left
_FORGET_HEAD = """
redis.call('XACK', KEYS[4], ARGV[1], ARGV[3])
local removed = redis.call('XDEL', KEYS[4], ARGV[3])
if removed > 0 then redis.call('DECRBY', KEYS[3], removed) end
local holder = redis.call('HGET', KEYS[5], 'worker')
if holder then redis.call('XGROUP', 'DELCONSUMER', KEYS[4], ARGV[1], holder) end
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('XLEN', KEYS[4]) > 0 then redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2]) end
"""

COMPLETE = f"""
-- KEYS: due, inflight, depth, outbox, attempt; ARGV: group, subscription, id, now
{_IN_FLIGHT}
{_FORGET_HEAD}
return 1
"""

DEAD_LETTER = f"""
-- KEYS: due, inflight, depth, outbox, attempt, dead
-- ARGV: group, subscription, id, now, reason, '1' if a last error is given else '0', it
{_IN_FLIGHT}
local state = redis.call('HMGET', KEYS[5], 'attempts', 'first', 'error')
local entries = redis.call('XRANGE', KEYS[4], ARGV[3], ARGV[3])
local dead_id = false
if entries[1] then
  local state = redis.call('HMGET', KEYS[5], 'attempts', 'first', 'error')
  local record = {{'sub', ARGV[2], 'id', ARGV[3], 'attempts', tonumber(state[1] or '0') + 1,
                  'reason', ARGV[5], 'dead_at', ARGV[4]}}
  for _, value in ipairs(entries[1][2]) do record[#record + 1] = value end  -- meta, body
  if state[2] then
    record[#record + 1] = 'first'
    record[#record + 1] = state[2]
  end
  local last_error = state[3]
  if ARGV[6] == '1' then last_error = ARGV[7] end
  if last_error then
    record[#record + 1] = 'error'
    record[#record + 1] = last_error
  end
  dead_id = redis.call('XADD', KEYS[6], '*', unpack(record))
end
{_FORGET_HEAD}
return dead_id
"""

RETRY_LATER = f"""
-- KEYS: due, inflight, depth, outbox, attempt; ARGV: group, subscription, id, at, error
{_IN_FLIGHT}
redis.call('HINCRBY', KEYS[5], 'attempts', 1)
redis.call('HSET', KEYS[5], 'error', ARGV[5])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
return 1
"""

REPLAY = """
-- KEYS: dead, due, inflight, depth, subscriptions, alarm subscriptions
-- ARGV: outbox prefix, group, id, now
local entries = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
if not entries[1] then return false end
local fields = {}
local flat = entries[1][2]
for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
local sub = fields['sub']
if redis.call('HEXISTS', KEYS[5], sub) == 0 and redis.call('HEXISTS', KEYS[6], sub) == 0 then
  return false
end
local stream = ARGV[1] .. sub
local fresh = redis.call('EXISTS', stream) == 0
local id = redis.call('XADD', stream, '*', 'meta', fields['meta'], 'body', fields['body'])
if fresh then redis.call('XGROUP', 'CREATE', stream, ARGV[2], '0') end
if not redis.call('ZSCORE', KEYS[3], sub) then redis.call('ZADD', KEYS[2], 'NX', ARGV[4], sub) end
redis.call('INCR', KEYS[4])
redis.call('XDEL', KEYS[1], ARGV[3])
return id
"""

ACQUIRE = """
-- KEYS: holder, epoch; ARGV: holder, ttl in ms
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return false end
if current then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local epoch = redis.call('GET', KEYS[2])
  if epoch then return tonumber(epoch) end
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return redis.call('INCR', KEYS[2])
"""

RELEASE = """
-- KEYS: holder; ARGV: holder
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
