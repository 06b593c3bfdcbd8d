"""The Redis Streams broker: one stream per topic, offsets assigned atomically in Redis.

Keys of one deployment (all under `prefix`):

    <prefix>:epoch            the lineage of every topic's history (SET NX by the first node)
    <prefix>:offset:<topic>   the topic's latest offset (INCR)
    <prefix>:events:<topic>   the topic's events; entry id `<offset>-0`, one field `event`:
                              `{"event": kind, "ts": rfc3339, "data": {...}}` as JSON
    <prefix>:ingest           events written by producers outside the hub (see ingest.py),
    <prefix>:ingest:cursor    with the id of the last entry published,
    <prefix>:ingest:leader    the node publishing them now,
    <prefix>:ingest:dead      and the entries refused, with the reason
    <prefix>:ingested:...     producers' idempotency keys seen within the dedup window

A publish is one Lua script: INCR the counter and XADD with the explicit id `<offset>-0`,
so stream ids are the protocol's offsets and concurrent nodes never race. Each node runs one
reader task doing `XREAD BLOCK` over the streams of the topics it serves, from the last
offset it fanned out per topic, and hands what it reads to its router. Per-topic streams
(rather than one shared stream of all events) keep each event stored once, make a topic's
history an `XRANGE` away, and let a reconnecting reader resume each topic exactly where it
stopped.

Reads are fenced by what this node has fanned out: `position` and the history reads answer
at most up to the offset the local reader has delivered, so a subscription's replay ends
exactly where its live events begin, with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ocos_hub import Event, HistoryPage, HubError, Position
from ocos_hub.broker import Deliver, Draft
from ocos_hub.config import ConfigError
from ocos_hub.protocol import encode, now_rfc3339
from ocos_hub.shared_broker import LOST, SharedBroker
from ocos_hub.tasks import stop_tasks
from ocos_redis.config import RedisConfig

if TYPE_CHECKING:
    from ocos_hub.config import HubConfig
    from ocos_hub.hub import Hub

log = logging.getLogger("ocos_redis")

# What a lost, restarting or failing-over Redis raises; everything else is a bug.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    OSError,
    TimeoutError,
)

# KEYS: epoch, ingest cursor, ingest stream, dead letters; then per draft: offset counter,
# stream, dedup mark. ARGV: candidate epoch, MAXLEN, (unused), mark TTL (s), expected ingest
# cursor ('' for a plain publish), new ingest cursor, dead-letter MAXLEN, then per draft: the
# event as JSON, '1' when its mark applies; then the refused entries (id, error, fields as
# JSON), then the ids of the ingest entries done with.
# Returns {epoch, offset...}: a draft whose mark was already set is not appended again and
# its first offset comes back negated. Returns nil, publishing nothing, when the ingest
# cursor is not the expected one (another node published those entries first).
PUBLISH_LUA = """
local expected = ARGV[5]
local drafts = (#KEYS - 4) / 3
if expected ~= '' then
  local cursor = redis.call('GET', KEYS[2]) or '0-0'
  if cursor ~= expected then
    return false
  end
end
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local result = {epoch}
for i = 0, drafts - 1 do
  local k = 5 + 3 * i
  local a = 8 + 2 * i
  local seen = false
  if ARGV[a + 1] == '1' then
    seen = redis.call('GET', KEYS[k + 2])
  end
  if seen then
    result[#result + 1] = -tonumber(seen)
  else
    local offset = redis.call('INCR', KEYS[k])
    redis.call('XADD', KEYS[k + 1], 'MAXLEN', '~', ARGV[2], offset .. '-0', 'event', ARGV[a])
    if ARGV[a + 1] == '1' then
      redis.call('SET', KEYS[k + 2], offset, 'EX', ARGV[4])
    end
    result[#result + 1] = offset
  end
end
if expected ~= '' then
  local a = 8 + 2 * drafts
  local dead = tonumber(ARGV[a])
  for d = 0, dead - 1 do
    local b = a + 1 + 3 * d
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], '*',
               'entry', ARGV[b], 'error', ARGV[b + 1], 'fields', ARGV[b + 2])
  end
  for x = a + 1 + 3 * dead, #ARGV do
    redis.call('XDEL', KEYS[3], ARGV[x])
  end
  redis.call('SET', KEYS[2], ARGV[6])
end
return result
"""

# KEYS[1] epoch, then offset counters; ARGV[1] candidate epoch. Returns {epoch, offset...}.
POSITIONS_LUA = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local result = {epoch}
for i = 2, #KEYS do
  result[#result + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
return result
"""




def unavailable(what: str, exc: BaseException | None = None) -> HubError:
    reason = f": {exc}" if exc is not None and str(exc) else ""
    return HubError("unavailable", f"{what}: the Redis broker is unreachable{reason}; "
                    "try again shortly")


def connect(config: RedisConfig, socket_timeout: float) -> aioredis.Redis:
    """A client that fails fast: one immediate retry (a pooled connection that died with a
    restart), then the error, so callers decide between backoff and `unavailable`."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        config.url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=config.command_timeout,
        retry=Retry(NoBackoff(), 1),
        client_name=f"ocos-hub:{config.prefix}",
    )
    return client


class Keys:
    """Every key name of one deployment, in one place (the docs describe them)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.epoch = f"{prefix}:epoch"
        self.ingest = f"{prefix}:ingest"
        self.ingest_cursor = f"{prefix}:ingest:cursor"
        self.ingest_leader = f"{prefix}:ingest:leader"
        self.dead = f"{prefix}:ingest:dead"

    def offset(self, topic: str) -> str:
        return f"{self.prefix}:offset:{topic}"

    def events(self, topic: str) -> str:
        return f"{self.prefix}:events:{topic}"

    def ingested(self, mark: str) -> str:
        return f"{self.prefix}:ingested:{mark}"


@dataclass(frozen=True, slots=True)
class IngestStep:
    """Ingest entries handled by one publish: the cursor moves from `expected` to `cursor`,
    `refused` entries (id, reason, fields as JSON) go to the dead letters, and the `done`
    entries are deleted from the ingest stream."""

    expected: str
    cursor: str
    refused: list[tuple[str, str, str]]
    done: list[str]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def entry_offset(entry_id: bytes | str) -> int:
    return int(_text(entry_id).partition("-")[0])


def entry_event(topic: str, entry_id: bytes | str, fields: dict[Any, Any]) -> Event:
    """An events-stream entry as the hub's event; raises on a malformed entry.

    One field per entry (`event`: `{"event", "ts", "data"}` as JSON, the body NATS messages
    have too): a reply of fewer items is what the reader's Redis client parses fastest.
    """
    stored = json.loads(fields[b"event"])
    data = stored["data"]
    if not isinstance(data, dict):
        raise ValueError("data is not a JSON object")
    return Event(topic, str(stored["event"]), entry_offset(entry_id), str(stored["ts"]), data)


class RedisBroker(SharedBroker):
    """Offsets, history and fan-out to every node through Redis Streams."""

    backend = "Redis"
    connection_errors = REDIS_DOWN

    def __init__(self, config: RedisConfig, hub_config: HubConfig) -> None:
        super().__init__(config.redacted_url(), config.reconnect_min, config.reconnect_max)
        self.config = config
        self.keys = Keys(config.prefix)
        self.max_len = config.max_len or hub_config.history.max_events
        self.dedup_ttl = max(1, int(hub_config.publish.dedup_window))
        self._client: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self._epoch = ""
        # per watched topic: the last offset this node fanned out (its reader's cursor)
        self._cursors: dict[str, int] = {}
        self._topic_of_key: dict[bytes, str] = {}
        self._watching = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._client = connect(self.config, self.config.command_timeout)
        self._reader = connect(self.config,
                               self.config.block_ms / 1000 + self.config.command_timeout)
        self._publish_script = self._client.register_script(PUBLISH_LUA)
        self._positions_script = self._client.register_script(POSITIONS_LUA)
        try:
            self._epoch, _ = await asyncio.wait_for(
                self._positions(self._client, ()), self.config.command_timeout)
        except REDIS_DOWN as exc:
            await self._close_clients()
            raise ConfigError(f"[plugins.redis] url: cannot reach Redis at "
                              f"{self.config.redacted_url()}: {exc or type(exc).__name__}"
                              ) from None
        except redis.exceptions.RedisError as exc:  # ACL, wrong database, ...
            await self._close_clients()
            raise ConfigError(f"[plugins.redis] url: Redis at {self.config.redacted_url()} "
                              f"refuses the hub: {exc}") from None
        self._healthy = True
        self._tasks.append(asyncio.get_running_loop().create_task(self._read_forever()))

    @property
    def closing(self) -> bool:
        return self._closing

    async def attach(self, hub: Hub) -> None:
        """Serve `hub`'s topics and ingest for it. Called at startup, before clients connect,
        so that every event of every topic reaches the hub's listeners."""
        self.hub = hub
        await self.watch(list(hub.topics))
        if self.config.ingest:
            from ocos_redis.ingest import Ingest

            ingest = Ingest(self, hub)
            self._tasks.append(asyncio.get_running_loop().create_task(ingest.run()))

    async def watch(self, topics: Sequence[str]) -> None:
        """Fan out these topics from their current offsets on."""
        fresh = [t for t in topics if t not in self._cursors]
        if not fresh:
            return
        assert self._client is not None, "start the broker first"
        try:
            epoch, offsets = await self._positions(self._client, fresh)
        except REDIS_DOWN as exc:
            raise unavailable("watching topics", exc) from None
        if epoch == self._epoch:
            for topic, offset in zip(fresh, offsets, strict=True):
                self._watch_at(topic, offset)

    def _watch_at(self, topic: str, offset: int) -> None:
        if topic not in self._cursors:
            self._cursors[topic] = offset
            self._topic_of_key[self.keys.events(topic).encode()] = topic
            self._watching.set()

    async def close(self) -> None:
        self._closing = True
        await stop_tasks(self._tasks, self.config.command_timeout + 1)
        self._healthy = False
        self._deliver = None
        self._wake()
        await self._close_clients()

    async def _close_clients(self) -> None:
        for client in (self._client, self._reader):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._reader = None

    async def ready(self) -> bool:
        if not self._healthy or self._client is None:
            return False
        try:
            return bool(await asyncio.wait_for(self._client.ping(),
                                               self.config.command_timeout))
        except REDIS_DOWN:
            return False

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, drafts: Sequence[Draft]) -> list[Event]:
        published = await self.append(drafts)
        assert published is not None
        return [event for event, _ in published]

    async def append(
        self, drafts: Sequence[Draft], marks: Sequence[str | None] = (),
        ingested: IngestStep | None = None,
    ) -> list[tuple[Event, bool]] | None:
        """Append drafts atomically, in order; return each as an event and whether it is new.

        A draft with a mark (a producer's idempotency key) already used within the dedup
        window is not appended again: its first offset comes back with `False`. With
        `ingested`, the ingest cursor moves in the same step, and nothing is published
        (None) when another node moved it first.
        """
        if self._client is None:
            raise unavailable("publish")
        ts = now_rfc3339()
        keys = [self.keys.epoch, self.keys.ingest_cursor, self.keys.ingest, self.keys.dead]
        args: list[str | bytes | int] = [secrets.token_hex(8), self.max_len, "", self.dedup_ttl,
                                 ingested.expected if ingested else "",
                                 ingested.cursor if ingested else "",
                                 self.config.dead_letter_max_len]
        for index, (topic, kind, data) in enumerate(drafts):
            mark = marks[index] if marks else None
            counter = self.keys.offset(topic)
            keys += [counter, self.keys.events(topic),
                     self.keys.ingested(mark) if mark else counter]
            args += [encode({"event": kind, "ts": ts, "data": data}), "1" if mark else "0"]
        if ingested is not None:
            args.append(len(ingested.refused))
            for entry_id, error, fields in ingested.refused:
                args += [entry_id, error, fields]
            args += ingested.done
        try:
            result = await self._publish_script(keys=keys, args=args)
        except REDIS_DOWN as exc:
            raise unavailable("publish", exc) from None
        if result is None:
            return None
        offsets = [int(offset) for offset in result[1:]]
        return [(Event(topic, kind, abs(offset), ts, data), offset > 0)
                for (topic, kind, data), offset in zip(drafts, offsets, strict=True)]

    # -- positions and history ------------------------------------------------------------

    async def _positions(self, client: aioredis.Redis, topics: Sequence[str],
                         ) -> tuple[str, list[int]]:
        reply = await self._positions_script(
            keys=[self.keys.epoch, *(self.keys.offset(t) for t in topics)],
            args=[secrets.token_hex(8)], client=client)
        return _text(reply[0]), [int(offset) for offset in reply[1:]]

    async def _synced(self, topic: str) -> Position:
        """The topic's position, once this node has fanned out everything up to it.

        What a subscription reads is then exactly what its live events will not repeat.
        """
        if self._client is None:
            raise unavailable("read")
        try:
            epoch, (last,) = await self._positions(self._client, (topic,))
        except REDIS_DOWN as exc:
            raise unavailable("read", exc) from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.command_timeout
        while True:
            if epoch == self._epoch:
                self._watch_at(topic, last)  # no subscriber yet: nothing to catch up on
                if self._cursors[topic] >= last:
                    break
            if not self._healthy:
                raise unavailable("read")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HubError("unavailable", "this node is behind the Redis broker; "
                               "try again shortly")
            advanced = self._advanced
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), remaining)
        return Position(last, epoch)

    async def position(self, topic: str) -> Position:
        return await self._synced(topic)

    def _events(self, topic: str, entries: Sequence[tuple[bytes, dict[Any, Any]]],
                ) -> list[Event]:
        events = []
        for entry_id, fields in entries:
            try:
                events.append(entry_event(topic, entry_id, fields))
            except (KeyError, ValueError, TypeError) as exc:
                log.warning("skipping malformed entry %s of %s: %s", _text(entry_id),
                            self.keys.events(topic), exc)
        return events

    async def _page(self, topic: str, start: int, end: int, limit: int, *, newest: bool,
                    ) -> HistoryPage:
        """Retained events with offsets in [start, end], at most `limit`: the oldest ones,
        or the newest ones when `newest`."""
        position = await self._synced(topic)
        end = min(end, position.offset)
        assert self._client is not None
        key = self.keys.events(topic)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xrange(key, "-", "+", count=1)
                if start <= end and limit > 0:
                    if newest:
                        pipe.xrevrange(key, f"{end}-0", f"{start}-0", count=limit)
                    else:
                        pipe.xrange(key, f"{start}-0", f"{end}-0", count=limit)
                oldest, *found = await pipe.execute()
        except REDIS_DOWN as exc:
            raise unavailable("read", exc) from None
        entries = found[0] if found else []
        if newest:
            entries.reverse()
        first = entry_offset(oldest[0][0]) if oldest else position.offset + 1
        return HistoryPage(self._events(topic, entries), position.epoch,
                           min(first, position.offset + 1), position.offset)

    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        return await self._page(topic, after + 1, 1 << 62, limit, newest=False)

    async def read_last(self, topic: str, count: int) -> HistoryPage:
        return await self._page(topic, 1, 1 << 62, count, newest=True)

    async def read_before(self, topic: str, before: int, limit: int) -> HistoryPage:
        return await self._page(topic, 1, before - 1, limit, newest=True)

    # -- the reader -----------------------------------------------------------------------

    async def _read(self) -> None:
        reader = self._reader
        assert reader is not None
        epoch, _ = await self._positions(reader, ())
        if epoch != self._epoch:
            self._new_lineage(epoch)
        self._connected()
        while True:
            if not self._cursors:
                self._watching.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._watching.wait(), self.config.block_ms / 1000)
                continue
            streams: dict[Any, Any] = {
                self.keys.events(t): f"{c}-0" for t, c in self._cursors.items()}
            async with reader.pipeline(transaction=False) as pipe:
                pipe.get(self.keys.epoch)
                pipe.xread(streams, count=self.config.read_count, block=self.config.block_ms)
                epoch_now, reply = await pipe.execute()
            if epoch_now is None:  # the keys were lost; agree on a new lineage
                epoch_now, _ = await self._positions(reader, ())
            if _text(epoch_now) != self._epoch:
                self._new_lineage(_text(epoch_now))
                continue
            if reply:
                self._fan_out(reply.items() if isinstance(reply, dict) else reply)

    def _fan_out(self, reply: Any) -> None:
        events: list[Event] = []
        gaps: list[str] = []
        for key, entries in reply:
            topic = self._topic_of_key.get(key if isinstance(key, bytes) else key.encode())
            if topic is None:
                continue
            cursor = self._cursors[topic]
            for event in self._events(topic, entries):
                if event.offset <= cursor:
                    continue
                if event.offset != cursor + 1 and topic not in gaps:
                    gaps.append(topic)
                events.append(event)
                cursor = event.offset
            if entries:
                cursor = max(cursor, entry_offset(entries[-1][0]))
            self._cursors[topic] = cursor
        self._hand_over(events, gaps)

    def _new_lineage(self, epoch: str) -> None:
        """Redis lost this deployment's keys (restarted empty, flushed): offsets start over."""
        if self._epoch:
            log.warning("the history in Redis was lost (epoch %s -> %s); offsets start over",
                        self._epoch, epoch)
            self.resync(list(self._cursors), LOST)
        self._epoch = epoch
        for topic in self._cursors:
            self._cursors[topic] = 0
        self._wake()
