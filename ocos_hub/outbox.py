"""How queued bytes reach the sockets: the outbox, and feeds for plain subscribers.

A write to a loopback or network socket costs far more than the Python around it, so every
connection gets at most one write per sweep, whatever it has pending: replies and events
alike. Two kinds of work wait in the outbox, written in the order they came:

- a `Session` with bytes of its own queued (replies, notices, filtered events, replays);
- a sweep of a `Feed`: the frames published to the plain subscribers of one topic since
  the last sweep. An event costs the feed one append, not one call per subscriber; each
  member keeps a cursor, and members at the same cursor share one joined write.

One loop callback writes for at most `FLUSH_SLICE` per loop iteration. Between slices the
loop polls, so an event published mid-sweep joins the writes not yet made, and requests
and pings are served while thousands of connections are being written.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocos_hub.session import Session

# Seconds of writing per loop iteration.
FLUSH_SLICE = 0.0005

# What a connection may have queued or owed before its write, as a multiple of
# `send_buffer_bytes` (a large publish batch within one tick; a request holding events
# back); past it the client is slow whatever the transport holds.
HARD_LIMIT_FACTOR = 8


class Feed:
    """The frames bound for the plain subscribers of one topic (one feed per topic and
    compression window), kept until every member has been written them."""

    __slots__ = ("members", "_outbox", "_lag_limit", "_frames", "_starts", "_base", "_total",
                 "_joins", "sweeping")

    def __init__(self, outbox: Outbox, lag_limit: int) -> None:
        # member -> index of the next frame it is owed (counted from the feed's start)
        self.members: dict[Session, int] = {}
        self._outbox = outbox
        self._lag_limit = lag_limit  # bytes a member may be owed after a sweep
        self._frames: list[bytes] = []
        self._starts: list[int] = []  # byte position of each frame, for a member's lag
        self._base = 0  # index of _frames[0]
        self._total = 0  # bytes appended, ever
        self._joins: dict[int, bytes] = {}  # cursor -> the frames from there on, joined
        self.sweeping = False

    @property
    def end(self) -> int:
        return self._base + len(self._frames)

    def join(self, session: Session) -> None:
        """Make `session` a member from now on: it is owed only what comes next."""
        self.members[session] = self.end

    def leave(self, session: Session) -> None:
        self.members.pop(session, None)

    def append(self, frame: bytes) -> None:
        """Queue `frame` for every member; one call, whatever the number of members."""
        self._frames.append(frame)
        self._starts.append(self._total)
        self._total += len(frame)
        if self._joins:
            self._joins.clear()
        if not self.sweeping and self.members:
            self.sweeping = True
            self._outbox.add(_Sweep(self))

    def take(self, session: Session) -> bytes:
        """What `session` is owed, joined (shared with the members at the same cursor);
        it is owed nothing more until the next append."""
        cursor = self.members.get(session)
        if cursor is None or cursor == self._base + len(self._frames):
            return b""
        self.members[session] = self._base + len(self._frames)
        joined = self._joins.get(cursor)
        if joined is None:
            start = cursor - self._base
            frames = self._frames
            joined = frames[start] if start == len(frames) - 1 else b"".join(frames[start:])
            self._joins[cursor] = joined
        return joined

    def lag_bytes(self, session: Session) -> int:
        """Bytes appended that `session` has not been given yet."""
        cursor = self.members.get(session, self.end)
        if cursor == self.end:
            return 0
        return self._total - self._starts[cursor - self._base]

    def swept(self, end_before: int) -> None:
        """After a sweep: sweep again for what came meanwhile, drop what every member has
        had, and close as slow the members owed more than the lag limit (a sweep writes
        every member, so only one held back by a long request can be)."""
        members = self.members
        end = self.end
        low = min(members.values(), default=end)
        if low < end:
            behind = [s for s in members if self.lag_bytes(s) > self._lag_limit]
            for session in behind:
                session.slow_consumer()  # leaves the feed
            low = min(members.values(), default=end)
        drop = low - self._base
        if drop:
            del self._frames[:drop]
            del self._starts[:drop]
            self._base = low
            self._joins.clear()
        if end > end_before and members:
            self._outbox.add(_Sweep(self))
        else:
            self.sweeping = False


class _Sweep:
    """One pass over a feed's members (as they were when it started), resumable between
    slices."""

    __slots__ = ("feed", "_members", "_end")

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self._members = iter(list(feed.members))
        self._end = feed.end

    def run(self, deadline: float) -> bool:
        """Write members until the deadline; True once every member is written."""
        clock = time.monotonic
        for session in self._members:
            session.flush()
            if clock() >= deadline:
                return False
        return True

    def finish(self) -> None:
        self.feed.swept(self._end)


class Outbox:
    """The work of writing, for every session and feed of one event loop, run by one loop
    callback rather than one callback per session."""

    __slots__ = ("_queue", "_scheduled")

    def __init__(self) -> None:
        self._queue: deque[Session | _Sweep] = deque()
        self._scheduled = False

    def add(self, work: Session | _Sweep) -> None:
        self._queue.append(work)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        queue = self._queue
        clock = time.monotonic
        deadline = clock() + FLUSH_SLICE
        try:
            while queue:
                work = queue[0]
                if isinstance(work, _Sweep):
                    if not work.run(deadline):
                        break
                    queue.popleft()
                    work.finish()
                else:
                    queue.popleft()
                    work.flush()
                if clock() >= deadline:
                    break
        finally:
            if queue:
                asyncio.get_running_loop().call_soon(self._run)
            else:
                self._scheduled = False


# One outbox per event loop (tests run many loops in one process); it holds no reference
# to its loop, so a closed loop and its outbox go away together.
_outboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = (
    weakref.WeakKeyDictionary())


def outbox_of(loop: asyncio.AbstractEventLoop) -> Outbox:
    outbox = _outboxes.get(loop)
    if outbox is None:
        outbox = _outboxes[loop] = Outbox()
    return outbox
