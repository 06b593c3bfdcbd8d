"""The ingest stream: how a producer outside the hub (the chain node) publishes over Redis.

A producer appends to `<prefix>:ingest` (`XADD <prefix>:ingest * topic T event K data JSON
[key K]`). It never writes the per-topic event streams, whose ids are offsets only the hub
assigns. One node at a time (the holder of the `<prefix>:ingest:leader` lease) reads the
entries after `<prefix>:ingest:cursor`, validates each against its topic's model exactly
like an HTTP publish, and publishes the valid ones in entry order. The same Lua script
appends the events, moves the cursor, deletes the entries and writes the refused ones to
`<prefix>:ingest:dead` with the reason, and does nothing if the cursor moved meanwhile.

So every entry is published exactly once and in the order the producer wrote it, even when
a leader stalls past its lease and a second node takes over (the loser's script finds the
cursor moved and publishes nothing). A producer that retries an `XADD` it is unsure of gives
the entry a `key`: an entry repeating a `(topic, key)` seen within `[publish] dedup_window`
is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import socket
from typing import TYPE_CHECKING, Any

from ocos_hub import HubError
from ocos_hub.broker import Draft
from ocos_hub.tasks import cancelling
from ocos_redis.broker import REDIS_DOWN, IngestStep

if TYPE_CHECKING:
    from ocos_hub.hub import Hub
    from ocos_redis.broker import RedisBroker

log = logging.getLogger("ocos_redis.ingest")

# Fields a producer may write; anything else is refused, so a typo is not silently ignored.
FIELDS = frozenset({b"topic", b"event", b"data", b"key"})

# Take the lease when free, or extend it when ours. KEYS[1] lease; ARGV node, TTL (ms).
LEAD_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

RESIGN_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"""

Entry = tuple[bytes, dict[bytes, bytes]]


class Refused(Exception):
    """An ingest entry that cannot be published; its message goes to the dead letters."""


class Ingest:
    """One node's part in ingesting: publish while it holds the lease, else stand by."""

    def __init__(self, broker: RedisBroker, hub: Hub) -> None:
        self.broker = broker
        self.hub = hub
        self.config = broker.config
        self.keys = broker.keys
        self.node = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        # the lease outlives a blocking read by a wide margin
        self.lease_ms = max(5000, 5 * self.config.block_ms)
        self.published = 0
        self.refused = 0

    async def run(self) -> None:
        delay = self.config.reconnect_min
        try:
            while not self.broker.closing:
                try:
                    if await self._lead():
                        await self.step(self.config.block_ms)
                    else:
                        await asyncio.sleep(self.lease_ms / 3000)
                    delay = self.config.reconnect_min
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if cancelling():
                        raise asyncio.CancelledError from None
                    if isinstance(exc, (*REDIS_DOWN, HubError)):
                        log.debug("ingest paused: %s", exc)
                    else:
                        log.exception("the ingest loop failed; restarting it")
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(self.config.reconnect_max, delay * 2)
        finally:
            await self._resign()

    async def _lead(self) -> bool:
        client = self.broker._client
        assert client is not None
        held = await client.eval(LEAD_LUA, 1, self.keys.ingest_leader, self.node,
                                 self.lease_ms)
        return bool(held)

    async def _resign(self) -> None:
        """Hand the lease over at once at shutdown instead of letting it expire."""
        client = self.broker._client
        if client is None:
            return
        with contextlib.suppress(*REDIS_DOWN):
            await client.eval(RESIGN_LUA, 1, self.keys.ingest_leader, self.node)

    async def step(self, block_ms: int | None) -> int:
        """Publish the next entries after the cursor; return how many entries were handled."""
        client = self.broker._reader
        assert client is not None
        raw: Any = await client.get(self.keys.ingest_cursor)
        cursor = raw.decode() if raw else "0-0"
        reply: Any = await client.xread({self.keys.ingest: cursor},
                                        count=self.config.read_count, block=block_ms)
        entries: list[Entry] = list(reply[0][1]) if reply else []
        if not entries:
            return 0
        drafts: list[Draft] = []
        marks: list[str | None] = []
        refused: list[tuple[str, str, str]] = []
        for entry in entries:
            try:
                draft, mark = self.parse(entry)
            except Refused as exc:
                refused.append((entry[0].decode(), str(exc), _fields_json(entry[1])))
                continue
            drafts.append(draft)
            marks.append(mark)
        done = [entry_id.decode() for entry_id, _ in entries]
        published = await self.broker.append(
            drafts, marks, IngestStep(cursor, done[-1], refused, done))
        if published is None:
            log.info("ingest: another node published entries after %s first", cursor)
            return 0
        for event, fresh in published:
            if fresh:
                self.published += 1
            else:
                log.info("ingest: dropped a repeated key (%s #%d)", event.topic, event.offset)
        for entry_id, reason, _ in refused:
            self.refused += 1
            log.warning("ingest: refused entry %s of %s: %s", entry_id, self.keys.ingest,
                        reason)
        return len(entries)

    def parse(self, entry: Entry) -> tuple[Draft, str | None]:
        """Check an entry as the HTTP API checks a publish; return it and its dedup mark."""
        _, fields = entry
        unknown = sorted(f.decode(errors="replace") for f in set(fields) - FIELDS)
        if unknown:
            raise Refused(f"unknown fields {unknown}; an entry has topic, event, data, key")
        try:
            topic_name = fields[b"topic"].decode()
            kind = fields[b"event"].decode()
            raw = fields[b"data"]
        except KeyError as exc:
            raise Refused(f"missing field {exc.args[0].decode()!r}") from None
        except UnicodeDecodeError:
            raise Refused("topic and event must be UTF-8 text") from None
        topic = self.hub.topics.get(topic_name)
        if topic is None:
            raise Refused(f"unknown_topic: no topic {topic_name!r}")
        try:
            data: Any = json.loads(raw)
        except ValueError as exc:
            raise Refused(f"invalid_json: data is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise Refused("invalid_event: data must be a JSON object")
        try:
            clean = topic.validate_data(kind, data)
        except HubError as exc:
            details = f" {json.dumps(exc.details, separators=(',', ':'))}" if exc.details else ""
            raise Refused(f"{exc.code}: {exc.message}{details}") from None
        key = fields.get(b"key")
        if key is None:
            return (topic_name, kind, clean), None
        if not 1 <= len(key) <= 200:
            raise Refused("key must have 1 to 200 bytes")
        return (topic_name, kind, clean), f"{topic_name}:{key.decode(errors='replace')}"


def _fields_json(fields: dict[bytes, bytes]) -> str:
    return json.dumps({k.decode(errors="replace"): v.decode(errors="replace")
                       for k, v in fields.items()}, separators=(",", ":"))
