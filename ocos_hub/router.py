"""The router: which connection receives which event. The fan-out hot path lives here.

Subscriptions without any filter ("plain") are members of their topic's `Feed`: a batch
costs one append of its joined frames, whatever the number of subscribers, and the outbox
writes each member what it is owed. Filtered subscriptions are checked event by event.
Events of a topic nobody subscribes to are never encoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ocos_hub.broker import Event
from ocos_hub.outbox import Feed, outbox_of
from ocos_hub.protocol import Deflate
from ocos_hub.topics import TopicFilter, Visibility

if TYPE_CHECKING:
    from ocos_hub.session import Session

EventPredicate = Callable[[Event], bool]


class Subscription:
    """One connection's subscription to one topic, with everything that narrows it.

    Until `Router.go_live`, live events are held in `backlog` so that a replay (or the ack)
    goes out first and nothing is sent twice or skipped.
    """

    __slots__ = ("session", "topic", "kinds", "filter", "where", "visible", "backlog")

    def __init__(
        self,
        session: Session,
        topic: str,
        kinds: frozenset[str] | None = None,
        filter: TopicFilter | None = None,
        where: EventPredicate | None = None,
        visible: Visibility | None = None,
    ) -> None:
        self.session = session
        self.topic = topic
        self.kinds = kinds
        self.filter = filter
        self.where = where
        self.visible = visible
        self.backlog: list[Event] | None = []

    @property
    def plain(self) -> bool:
        return self.kinds is None and self.filter is None and self.where is None and (
            self.visible is None
        )

    def accepts(self, event: Event) -> bool:
        """Whether this subscription keeps the event (live and replayed alike)."""
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        if self.filter is not None and not self.filter.matches(event):
            return False
        if self.where is not None and not self.where(event):
            return False
        return self.visible is None or self.visible(self.session.principal, event)


class Router:
    """Topic -> live subscriptions, and the delivery of event batches to them."""

    def __init__(self, max_backlog: int = 100_000, lag_limit: int = 8 << 20) -> None:
        self.max_backlog = max_backlog
        self.lag_limit = lag_limit  # bytes a feed member may be owed after a sweep
        # plain subscriptions: one feed per topic and compression window (0: uncompressed,
        # else the window bits the session negotiated for permessage-deflate)
        self._feeds: dict[str, dict[int, Feed]] = {}
        self.deflate: Deflate | None = None
        self._filtered: dict[str, dict[Subscription, None]] = {}
        self._pending: dict[str, dict[Subscription, None]] = {}
        self.deliveries = 0

    def add(self, sub: Subscription) -> None:
        """Register a subscription in catch-up mode: live events go to its backlog."""
        sub.backlog = []
        self._pending.setdefault(sub.topic, {})[sub] = None

    def go_live(self, sub: Subscription, after: int) -> None:
        """Send the backlog past offset `after`, then deliver live events directly."""
        backlog, sub.backlog = sub.backlog or [], None
        pending = self._pending.get(sub.topic)
        if pending is None or sub not in pending:
            return  # removed while catching up
        del pending[sub]
        send = sub.session.send
        for event in backlog:
            if event.offset > after and sub.accepts(event):
                send(event.frame)
        if sub.plain:
            session = sub.session
            wbits = session.deflate if self.deflate is not None else 0
            feeds = self._feeds.setdefault(sub.topic, {})
            feed = feeds.get(wbits)
            if feed is None:
                feed = feeds[wbits] = Feed(outbox_of(asyncio.get_running_loop()),
                                           self.lag_limit)
            feed.join(session)
            session.feeds += (feed,)
        else:
            self._filtered.setdefault(sub.topic, {})[sub] = None

    def remove(self, sub: Subscription) -> None:
        # a session has one subscription per topic: a member of the topic's feed is `sub`
        session = sub.session
        feeds = self._feeds.get(sub.topic)
        if feeds is not None:
            for wbits, feed in list(feeds.items()):
                if session in feed.members:
                    feed.leave(session)
                    session.feeds = tuple(f for f in session.feeds if f is not feed)
                    if not feed.members:
                        del feeds[wbits]
            if not feeds:
                del self._feeds[sub.topic]
        for table in (self._filtered, self._pending):
            subs = table.get(sub.topic)
            if subs is not None and sub in subs:
                del subs[sub]
                if not subs:
                    del table[sub.topic]

    def count(self, topic: str | None = None) -> int:
        tables = (self._filtered, self._pending)
        if topic is not None:
            plain = sum(len(feed.members) for feed in self._feeds.get(topic, {}).values())
            return plain + sum(len(table.get(topic, ())) for table in tables)
        plain = sum(len(feed.members) for feeds in self._feeds.values()
                    for feed in feeds.values())
        return plain + sum(len(subs) for table in tables for subs in table.values())

    def deliver(self, events: Sequence[Event]) -> int:
        """Queue each event's shared frame to every subscription that keeps it.

        Returns the number of deliveries. Never awaits, never encodes per receiver.
        """
        if not events:
            return 0
        if len(events) == 1:
            return self._deliver_topic(events[0].topic, events)
        by_topic: dict[str, list[Event]] = {}
        for event in events:
            by_topic.setdefault(event.topic, []).append(event)
        return sum(self._deliver_topic(topic, batch) for topic, batch in by_topic.items())

    def _deliver_topic(self, topic: str, batch: Sequence[Event]) -> int:
        delivered = 0
        feeds = self._feeds.get(topic)
        if feeds:
            # one feed per compression window: nearly always just one, uncompressed or not
            for wbits, feed in feeds.items():
                if not wbits:
                    blob = batch[0].frame if len(batch) == 1 else b"".join(
                        [e.frame for e in batch])
                else:
                    settings = self.deflate
                    assert settings is not None  # a compressed feed exists only with it
                    blob = b"".join([e.deflated(wbits, settings) for e in batch])
                feed.append(blob)
                delivered += len(feed.members) * len(batch)
        filtered = self._filtered.get(topic)
        if filtered:
            for sub in list(filtered):
                frames = [event.frame for event in batch if sub.accepts(event)]
                if frames:
                    sub.session.send(frames[0] if len(frames) == 1 else b"".join(frames))
                    delivered += len(frames)
        pending = self._pending.get(topic)
        if pending:
            for sub in list(pending):
                backlog = sub.backlog
                if backlog is None:
                    continue
                backlog.extend(batch)
                if len(backlog) > self.max_backlog:
                    sub.session.slow_consumer()
        self.deliveries += delivered
        return delivered
