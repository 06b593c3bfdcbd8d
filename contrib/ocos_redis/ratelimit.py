"""Rate-limit buckets and connection counts shared by every node (`<prefix>:rate:...`).

Each operation is one Lua script, so two nodes never both take a bucket's last token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket

import redis.asyncio as aioredis

from ocos_hub.tasks import cancelling, stop_tasks
from ocos_middleware.ratelimit import RateLimitStore
from ocos_redis.broker import REDIS_DOWN
from ocos_redis.stores import RedisStore

# KEYS[1] bucket. ARGV rate, burst. Redis's clock, so every node agrees on refill.
TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(stored[1]) or burst
local stamp = tonumber(stored[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""

# KEYS[1] holders hash {node: count}. ARGV this node, limit, prefix of node liveness keys.
# Counts of nodes whose liveness key expired (they stopped without releasing) are dropped.
ACQUIRE_LUA = """
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local node = fields[i]
  if node == ARGV[1] or redis.call('EXISTS', ARGV[3] .. node) == 1 then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], node)
  end
end
if ARGV[2] == '' then
  return total
end
if total >= tonumber(ARGV[2]) then
  return -1
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return total + 1
"""

RELEASE_LUA = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


class RedisRateLimitStore(RedisStore, RateLimitStore):
    """Token buckets and connection counts shared by every node.

    Buckets are hashes refilled on Redis's clock and expiring once full again. Connection
    counts are kept per node, and a node refreshes a liveness key while it runs, so the
    connections of a node that died stop counting once its key expires (`node_ttl`).
    """

    def __init__(self, client: aioredis.Redis, prefix: str, node_ttl: float = 30.0) -> None:
        super().__init__(client, prefix)
        self.node = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.node_ttl = node_ttl
        self._take = client.register_script(TAKE_LUA)
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._release = client.register_script(RELEASE_LUA)
        self._alive: asyncio.Task[None] | None = None

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}:rate:{kind}:{key}"

    @property
    def _node_key(self) -> str:
        return f"{self.prefix}:rate:node:{self.node}"

    async def take(self, key: str, rate: float, burst: float) -> float:
        wait = await self._call("rate limit", self._take(
            keys=[self._key("bucket", key)], args=[repr(rate), repr(float(burst))]))
        return float(wait)

    async def _keep_alive(self) -> None:
        while True:
            try:
                await self.client.set(self._node_key, "1", px=int(self.node_ttl * 1000))
            except REDIS_DOWN:
                if cancelling():
                    raise asyncio.CancelledError from None
            await asyncio.sleep(self.node_ttl / 3)

    async def acquire(self, key: str, limit: int) -> bool:
        if self._alive is None:
            await self._call("rate limit", self.client.set(
                self._node_key, "1", px=int(self.node_ttl * 1000)))
            self._alive = asyncio.get_running_loop().create_task(self._keep_alive())
        held = await self._call("rate limit", self._acquire(
            keys=[self._key("holders", key)],
            args=[self.node, str(limit), f"{self.prefix}:rate:node:"]))
        return int(held) >= 0

    async def release(self, key: str) -> None:
        await self._call("rate limit", self._release(
            keys=[self._key("holders", key)], args=[self.node]))

    async def holders(self, key: str) -> int:
        held = await self._call("rate limit", self._acquire(
            keys=[self._key("holders", key)], args=[self.node, "", f"{self.prefix}:rate:node:"]))
        return int(held)

    async def close(self) -> None:
        if self._alive is not None:
            await stop_tasks([self._alive], 1.0)
            self._alive = None
            with contextlib.suppress(*REDIS_DOWN):
                await self.client.delete(self._node_key)
        await super().close()
