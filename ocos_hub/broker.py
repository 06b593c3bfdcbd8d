"""Events, the broker and history interfaces, and their in-memory defaults.

The broker assigns each event its per-topic offset and hands it to every node's local
router; the history store retains events for replay. The Redis and NATS plugins implement
`Broker`; a persistent store (SQLite) implements `HistoryStore` under the memory broker.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ocos_hub.protocol import Deflate, deflated_frame, encode, now_rfc3339, text_frame


class Event:
    """One published event. Its frame is encoded on first use and shared by every receiver."""

    __slots__ = ("topic", "kind", "offset", "ts", "data", "_frame", "_deflated")

    def __init__(self, topic: str, kind: str, offset: int, ts: str, data: dict[str, Any],
                 frame: bytes | None = None) -> None:
        self.topic = topic
        self.kind = kind
        self.offset = offset
        self.ts = ts
        self.data = data
        # A store that keeps events encoded hands the frame back, so a replay never
        # encodes them again.
        self._frame: bytes | None = frame
        self._deflated: dict[int, bytes] | None = None

    def wire(self) -> dict[str, Any]:
        """The event as the protocol's `event` frame object."""
        return {
            "type": "event",
            "topic": self.topic,
            "event": self.kind,
            "offset": self.offset,
            "ts": self.ts,
            "data": self.data,
        }

    @property
    def frame(self) -> bytes:
        """The WebSocket frame carrying this event, built once."""
        if self._frame is None:
            self._frame = text_frame(encode(self.wire()))
        return self._frame

    def deflated(self, wbits: int, settings: Deflate) -> bytes:
        """This event's frame compressed for a window of `wbits`, built once per window."""
        cache = self._deflated
        if cache is None:
            cache = self._deflated = {}
        frame = cache.get(wbits)
        if frame is None:
            frame = cache[wbits] = deflated_frame(self.frame, wbits, settings)
        return frame

    def __repr__(self) -> str:
        return f"Event({self.topic}#{self.offset} {self.kind})"


class Position(NamedTuple):
    """A topic's latest offset (0 when empty) within its epoch."""

    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Retained events of one topic, with where the retained range starts and ends.

    `first_offset` is the oldest offset still retained (`last_offset + 1` when nothing is),
    which tells a resuming client whether anything it missed was trimmed.
    """

    events: list[Event]
    epoch: str
    first_offset: int
    last_offset: int


# The router's entry point: called with events in offset order, possibly many at once.
Deliver = Callable[[Sequence[Event]], None]

# (topic, kind, data) already validated against the topic's model.
Draft = tuple[str, str, dict[str, Any]]


class HistoryStore(ABC):
    """Assigns offsets and retains events under the memory broker. Bounded by construction."""

    async def open(self) -> None:  # noqa: B027 (optional for stores without resources)
        """Acquire resources (files, connections). Called once before the first append."""

    async def close(self) -> None:  # noqa: B027
        """Release resources; everything appended so far must be durable if the store is."""

    @abstractmethod
    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        """Store drafts in order, giving each the next offset of its topic."""

    @abstractmethod
    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        """At most `limit` retained events with offset > `after`, oldest first."""

    @abstractmethod
    async def read_last(self, topic: str, count: int) -> HistoryPage:
        """The last `count` retained events, oldest first."""

    @abstractmethod
    async def read_before(self, topic: str, before: int, limit: int) -> HistoryPage:
        """At most `limit` retained events with offset < `before`, oldest first (paging back)."""

    @abstractmethod
    async def position(self, topic: str) -> Position:
        """The topic's latest offset and epoch."""


class MemoryHistory(HistoryStore):
    """A bounded ring per topic, trimmed by count and age. One epoch per process."""

    def __init__(self, max_events: int = 10_000, max_age: float = 3600.0) -> None:
        self.max_events = max_events
        self.max_age = max_age
        self.epoch = secrets.token_hex(8)
        self._events: dict[str, deque[Event]] = {}
        self._times: dict[str, deque[float]] = {}
        self._last: dict[str, int] = {}

    async def append(self, drafts: Sequence[Draft]) -> list[Event]:
        now = time.monotonic()
        ts = now_rfc3339()
        stored = []
        for topic, kind, data in drafts:
            ring = self._events.get(topic)
            if ring is None:
                ring = self._events[topic] = deque(maxlen=self.max_events)
                self._times[topic] = deque(maxlen=self.max_events)
            offset = self._last.get(topic, 0) + 1
            self._last[topic] = offset
            event = Event(topic, kind, offset, ts, data)
            ring.append(event)
            self._times[topic].append(now)
            stored.append(event)
        for topic in {draft[0] for draft in drafts}:
            self._trim(topic, now)
        return stored

    def _trim(self, topic: str, now: float) -> None:
        times, ring = self._times[topic], self._events[topic]
        horizon = now - self.max_age
        while times and times[0] < horizon:
            times.popleft()
            ring.popleft()

    def _page(self, topic: str, events: list[Event]) -> HistoryPage:
        ring = self._events.get(topic)
        last = self._last.get(topic, 0)
        first = ring[0].offset if ring else last + 1
        return HistoryPage(events, self.epoch, first, last)

    def _retained(self, topic: str) -> deque[Event]:
        ring = self._events.get(topic)
        if ring is None:
            return deque()
        self._trim(topic, time.monotonic())
        return ring

    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        ring = self._retained(topic)
        if not ring:
            return self._page(topic, [])
        start = max(0, after - ring[0].offset + 1)
        return self._page(topic, [ring[i] for i in range(start, min(len(ring), start + limit))])

    async def read_last(self, topic: str, count: int) -> HistoryPage:
        ring = self._retained(topic)
        return self._page(topic, [ring[i] for i in range(max(0, len(ring) - count), len(ring))])

    async def read_before(self, topic: str, before: int, limit: int) -> HistoryPage:
        ring = self._retained(topic)
        if not ring:
            return self._page(topic, [])
        stop = min(len(ring), max(0, before - ring[0].offset))
        return self._page(topic, [ring[i] for i in range(max(0, stop - limit), stop)])

    async def position(self, topic: str) -> Position:
        return Position(self._last.get(topic, 0), self.epoch)


class Broker(ABC):
    """Orders events per topic and carries them to the router of every hub node.

    The memory broker serves one process; the Redis and NATS plugins serve many nodes and
    keep history themselves. `publish` returns once the events are durable in the broker;
    it never waits for a receiver.
    """

    @abstractmethod
    async def start(self, deliver: Deliver) -> None:
        """Connect, and from now on call `deliver` with every event published on any node."""

    @abstractmethod
    async def close(self) -> None:
        """Stop delivering and release connections."""

    @abstractmethod
    async def publish(self, drafts: Sequence[Draft]) -> list[Event]:
        """Append drafts in order and return them as events with their offsets."""

    @abstractmethod
    async def position(self, topic: str) -> Position:
        """The latest offset of a topic and its epoch."""

    @abstractmethod
    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        """Retained events after an offset (replay and backfill)."""

    @abstractmethod
    async def read_last(self, topic: str, count: int) -> HistoryPage:
        """The last `count` retained events (`rewind`)."""

    @abstractmethod
    async def read_before(self, topic: str, before: int, limit: int) -> HistoryPage:
        """Retained events before an offset (paging back through history)."""

    async def ready(self) -> bool:
        """Whether the broker can take publishes now (`/readyz`)."""
        return True


class MemoryBroker(Broker):
    """The single-process default: offsets and history from a `HistoryStore`."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history
        self._deliver: Deliver | None = None
        # Appends to an async store may interleave; the lock keeps delivery in offset order.
        self._order = asyncio.Lock()

    async def start(self, deliver: Deliver) -> None:
        await self.history.open()
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None
        await self.history.close()

    async def publish(self, drafts: Sequence[Draft]) -> list[Event]:
        async with self._order:
            events = await self.history.append(drafts)
            if self._deliver is not None:
                self._deliver(events)
        return events

    async def position(self, topic: str) -> Position:
        return await self.history.position(topic)

    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        return await self.history.read(topic, after, limit)

    async def read_last(self, topic: str, count: int) -> HistoryPage:
        return await self.history.read_last(topic, count)

    async def read_before(self, topic: str, before: int, limit: int) -> HistoryPage:
        return await self.history.read_before(topic, before, limit)
