"""The NATS JetStream broker: one stream per deployment, one subject per topic.

Events of topic T are messages on `<prefix>.T` in the stream `<stream>`; the body is
`{"event", "ts", "data"}` and the header `Ocos-Offset` carries the topic's offset. JetStream
numbers messages per stream, not per subject, so the offset is the hub's: a node publishes
offset N+1 with `Nats-Expected-Last-Subject-Sequence` set to the stream sequence of offset
N, and JetStream refuses the message if any other node appended to the subject meanwhile;
the node then reads the subject's last message and tries again. Offsets thus start at 1 and
grow by 1 per topic across all nodes. Retention is `max_msgs_per_subject` only, which always
keeps a subject's last message, so the next offset is never lost; a time limit would drop
it, so the stream has none.

The epoch is derived from the stream's creation time: every node reads the same one, and
it changes when the stream is deleted and created again (history lost).

Each node runs one reader: an ephemeral push consumer over `<prefix>.*` (ack none, flow
control, idle heartbeats) from the stream sequence after the last one it fanned out. A missed
heartbeat, a skipped delivery or a lost connection restarts it from that sequence. Reads
wait until the reader has fanned out the topic's last message, so that a replay ends exactly
where the live events begin. History comes from the stream: the subject's first and last
messages (direct get), a binary search over stream sequences for the sequence of an offset
(offsets of retained messages are contiguous and grow with the sequence), then the messages
in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.client import JetStreamContext

from ocos_hub import Event, HistoryPage, HubError, Position
from ocos_hub.broker import Deliver, Draft
from ocos_hub.config import ConfigError
from ocos_hub.protocol import encode, now_rfc3339
from ocos_hub.shared_broker import LOST, SharedBroker
from ocos_hub.tasks import stop_tasks
from ocos_nats.config import NatsConfig

if TYPE_CHECKING:
    from ocos_hub.config import HubConfig
    from ocos_hub.hub import Hub

log = logging.getLogger("ocos_nats")

OFFSET = "Ocos-Offset"
WRONG_LAST_SEQUENCE = 10071
STREAM_NAME_IN_USE = 10058
# Consecutive messages read one direct get at a time; longer ranges use a consumer.
DIRECT_RANGE = 16
# (offset, stream sequence) of the latest messages seen per topic, to skip a search.
HINTS = 4096

# What a lost or restarting NATS raises; anything else is a bug or an API refusal.
NATS_DOWN: tuple[type[BaseException], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.FlushTimeoutError,
    nats.errors.TimeoutError,
    nats.js.errors.ServiceUnavailableError,
    TimeoutError,
    OSError,
)

CONNECT_FAILED: tuple[type[BaseException], ...] = (*NATS_DOWN, nats.errors.Error)




class Stalled(Exception):
    """The reader's consumer skipped deliveries or went silent: restart it."""


READER_RESTARTS: tuple[type[BaseException], ...] = (*NATS_DOWN, Stalled)


@dataclass(frozen=True, slots=True)
class Stored:
    """A topic message as retained in the stream."""

    seq: int
    event: Event


def unavailable(what: str, exc: BaseException | None = None) -> HubError:
    reason = f" ({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})" if exc else ""
    return HubError("unavailable", f"{what}: the NATS broker is unreachable{reason}; "
                    "try again shortly")


def epoch_of(info: api.StreamInfo) -> str:
    """Every node derives the same epoch from the stream; a re-created stream gets a new one."""
    created = info.created.isoformat() if info.created else ""
    return hashlib.sha256(f"{info.config.name}|{created}".encode()).hexdigest()[:16]


class NatsBroker(SharedBroker):
    """Offsets, history and fan-out to every node through NATS JetStream."""

    backend = "NATS"
    connection_errors = READER_RESTARTS

    def __init__(self, config: NatsConfig, hub_config: HubConfig) -> None:
        super().__init__(config.redacted_url(), 0.1, config.reconnect_max)
        self.config = config
        self.stream = config.stream
        self.ingest_stream = f"{config.stream}_INGEST"
        self.prefix = config.prefix
        self.max_msgs = config.max_msgs_per_subject or hub_config.history.max_events
        # ingest redeliveries and producers' repeated keys are dropped within this window
        self.duplicate_window = max(120.0, hub_config.publish.dedup_window,
                                    4 * config.ingest_ack_wait)
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._direct = True
        self._epoch = ""
        self._cursor = 0  # the stream sequence of the last message this node fanned out
        self._last: dict[str, tuple[int, int]] = {}  # topic -> newest (seq, offset) known
        self._delivered: dict[str, int] = {}  # topic -> last offset fanned out
        self._hints: dict[str, deque[tuple[int, int]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._restart = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def closing(self) -> bool:
        return self._closing

    def subject(self, topic: str) -> str:
        return f"{self.prefix}.{topic}"

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        failures: list[BaseException] = []

        async def on_error(exc: Exception) -> None:
            failures.append(exc)
            log.debug("NATS: %s", exc)

        async def on_disconnect() -> None:
            if self._healthy:
                log.warning("lost NATS at %s; reconnecting", self.config.redacted_url())
            self._set_health(False)
            self._restart.set()

        async def on_reconnect() -> None:
            self._restart.set()

        nc = NATS()
        try:
            await asyncio.wait_for(nc.connect(
                servers=[url.strip() for url in self.config.url.split(",")],
                name="ocos-hub", connect_timeout=max(1, int(self.config.command_timeout)),
                # typed int, but only ever slept on: a fraction of a second is fine
                reconnect_time_wait=self.config.reconnect_wait,  # type: ignore[arg-type]
                max_reconnect_attempts=-1,
                pending_size=0, error_cb=on_error, disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect), self.config.command_timeout)
        except CONNECT_FAILED as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            reason = failures[-1] if failures else exc
            raise ConfigError(f"[plugins.nats] url: cannot reach NATS at "
                              f"{self.config.redacted_url()}: {reason or type(reason).__name__}"
                              ) from None
        self._nc = nc
        self._js = nc.jetstream(timeout=self.config.command_timeout)
        try:
            info = await self._ensure_streams()
        except NATS_DOWN as exc:
            await nc.close()
            raise ConfigError(f"[plugins.nats] url: JetStream does not answer at "
                              f"{self.config.redacted_url()} (is it enabled? nats-server -js): "
                              f"{type(exc).__name__}") from None
        except nats.js.errors.APIError as exc:
            await nc.close()
            raise ConfigError(f"[plugins.nats] stream: cannot use stream {self.stream!r}: "
                              f"{exc.description}") from None
        self._epoch = epoch_of(info)
        self._cursor = info.state.last_seq
        self._direct = bool(info.config.allow_direct)
        self._healthy = True
        self._tasks.append(asyncio.get_running_loop().create_task(self._read_forever()))

    async def _ensure_streams(self) -> api.StreamInfo:
        """The events stream (and the ingest stream), created when missing."""
        assert self._js is not None
        wanted = api.StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}.*", f"{self.prefix}.dead.*"],
            retention=api.RetentionPolicy.LIMITS, discard=api.DiscardPolicy.OLD,
            max_msgs_per_subject=self.max_msgs, storage=api.StorageType(self.config.storage),
            num_replicas=self.config.replicas, allow_direct=True,
            duplicate_window=self.duplicate_window,
            description="OCOS Hub events: <prefix>.<topic>, header Ocos-Offset")
        info = await self._stream(wanted)
        if self.config.ingest:
            await self._stream(api.StreamConfig(
                name=self.ingest_stream, subjects=[f"{self.prefix}.ingest.*"],
                retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType(
                    self.config.storage), num_replicas=self.config.replicas,
                description="OCOS Hub ingest: producers publish <prefix>.ingest.<topic>"))
        return info

    async def _stream(self, wanted: api.StreamConfig) -> api.StreamInfo:
        assert self._js is not None and wanted.name is not None
        try:
            return await self._js.stream_info(wanted.name)
        except nats.js.errors.NotFoundError:
            pass
        try:
            return await self._js.add_stream(wanted)
        except nats.js.errors.APIError as exc:
            if exc.err_code != STREAM_NAME_IN_USE:  # another node made it first
                raise
            return await self._js.stream_info(wanted.name)

    async def attach(self, hub: Hub) -> None:
        """Serve `hub`: its topics must be subject tokens; ingest for it."""
        self.hub = hub
        bad = [name for name in hub.topics if not name.replace("-", "").replace("_", "")
               .isalnum() or not name.isascii()]
        if bad:
            raise ConfigError(f"[plugins.nats]: topic names {bad} are not NATS subject tokens "
                              "(letters, digits, '-', '_')")
        if self.config.ingest:
            from ocos_nats.ingest import Ingest

            ingest = Ingest(self, hub)
            self._tasks.append(asyncio.get_running_loop().create_task(ingest.run()))

    async def close(self) -> None:
        self._closing = True
        await stop_tasks(self._tasks, self.config.command_timeout + 1)
        self._healthy = False
        self._deliver = None
        self._wake()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = self._js = None

    async def ready(self) -> bool:
        return self._healthy and self._nc is not None and self._nc.is_connected

    @property
    def js(self) -> JetStreamContext:
        if self._js is None or self._nc is None or not self._nc.is_connected:
            raise unavailable("NATS")
        return self._js

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, drafts: Sequence[Draft]) -> list[Event]:
        return [event for event, _ in await self.append(drafts)]

    async def append(self, drafts: Sequence[Draft], msg_ids: Sequence[str | None] = (),
                     ) -> list[tuple[Event, bool]]:
        """Append drafts in order; return each as an event and whether it is new.

        A draft with a message id JetStream saw within the duplicate window is not appended
        again: its first offset comes back with `False`. The events of one call are not
        interleaved with another call's from this node, but a failure halfway leaves the
        first ones published (JetStream has no multi-message transaction).
        """
        ts = now_rfc3339()
        topics = sorted({topic for topic, _, _ in drafts})
        locks = [self._locks.setdefault(topic, asyncio.Lock()) for topic in topics]
        async with contextlib.AsyncExitStack() as held:
            for lock in locks:
                await held.enter_async_context(lock)
            return [await self._append_one(topic, kind, data, ts,
                                           msg_ids[index] if msg_ids else None)
                    for index, (topic, kind, data) in enumerate(drafts)]
        raise AssertionError("unreachable")  # pragma: no cover

    async def _append_one(self, topic: str, kind: str, data: dict[str, Any], ts: str,
                          msg_id: str | None) -> tuple[Event, bool]:
        payload = encode({"event": kind, "ts": ts, "data": data})
        last = self._last.get(topic) or await self._fetch_last(topic)
        for _ in range(1000):  # each retry means another node appended meanwhile
            headers = {OFFSET: str(last[1] + 1),
                       "Nats-Expected-Last-Subject-Sequence": str(last[0])}
            if msg_id is not None:
                headers["Nats-Msg-Id"] = msg_id
            try:
                ack = await self.js.publish(self.subject(topic), payload, stream=self.stream,
                                            headers=headers, timeout=self.config.command_timeout)
            except nats.js.errors.APIError as exc:
                if exc.err_code != WRONG_LAST_SEQUENCE:
                    raise
                last = await self._fetch_last(topic)  # another node appended: follow it
                continue
            except NATS_DOWN as exc:
                raise unavailable("publish", exc) from None
            if ack.duplicate:
                first = await self._get(topic, seq=ack.seq)
                assert first is not None, "a duplicate's original is retained"
                return first.event, False
            self._note(topic, ack.seq, last[1] + 1)
            return Event(topic, kind, last[1] + 1, ts, data), True
        raise HubError("unavailable", f"publish: {topic!r} is contended by other nodes; "
                       "try again shortly")

    def _note(self, topic: str, seq: int, offset: int) -> None:
        known = self._last.get(topic)
        if known is None or seq > known[0]:
            self._last[topic] = (seq, offset)

    # -- positions and history ------------------------------------------------------------

    async def _get(self, topic: str, *, seq: int | None = None, after: int | None = None,
                   ) -> Stored | None:
        """The message at stream sequence `seq`, the subject's first at or after `after`, or
        (neither given) its last; None when there is none."""
        subject = self.subject(topic)
        try:
            if seq is not None:
                raw = await self.js.get_msg(self.stream, seq=seq, direct=self._direct)
            elif after is not None:
                raw = await self.js.get_msg(self.stream, seq=max(1, after), subject=subject,
                                            next=True, direct=self._direct)
            else:
                raw = await self.js.get_msg(self.stream, subject=subject, direct=self._direct)
        except nats.js.errors.NotFoundError:
            return None
        except NATS_DOWN as exc:
            raise unavailable("read", exc) from None
        assert raw.seq is not None
        return Stored(raw.seq, self._event(topic, raw.headers or {}, raw.data or b""))

    def _event(self, topic: str, headers: dict[str, str], body: bytes) -> Event:
        """A stored message as an event; raises on one not written by a hub node."""
        try:
            offset = int(headers[OFFSET])
            fields = json.loads(body)
            data = fields["data"]
            if not isinstance(data, dict):
                raise TypeError("data is not an object")
            return Event(topic, str(fields["event"]), offset, str(fields["ts"]), data)
        except (KeyError, ValueError, TypeError) as exc:
            raise HubError("internal_error", f"a message on {self.subject(topic)} was not "
                           f"written by a hub node ({exc}); producers publish to "
                           f"{self.prefix}.ingest.<topic>") from None

    async def _fetch_last(self, topic: str) -> tuple[int, int]:
        last = await self._get(topic)
        if last is None:
            return (0, 0)
        self._note(topic, last.seq, last.event.offset)
        return (last.seq, last.event.offset)

    async def _synced(self, topic: str) -> tuple[int, int]:
        """The topic's last (seq, offset), once this node has fanned out up to it."""
        seq, offset = await self._fetch_last(topic)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.command_timeout
        while self._cursor < seq:
            if not self._healthy:
                raise unavailable("read")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HubError("unavailable", "this node is behind the NATS broker; "
                               "try again shortly")
            advanced = self._advanced
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), remaining)
        return seq, offset

    async def position(self, topic: str) -> Position:
        _, offset = await self._synced(topic)
        return Position(offset, self._epoch)

    async def _page(self, topic: str, start: int, end: int, limit: int, *, newest: bool,
                    ) -> HistoryPage:
        """Retained events with offsets in [start, end], at most `limit`: the oldest ones,
        or the newest ones when `newest`."""
        last_seq, last = await self._synced(topic)
        epoch = self._epoch
        first = await self._get(topic, after=1) if last else None
        if first is None:
            return HistoryPage([], epoch, last + 1, last)
        start, end = max(start, first.event.offset), min(end, last)
        if start > end or limit <= 0:
            return HistoryPage([], epoch, first.event.offset, last)
        if newest:
            start = max(start, end - limit + 1)
        else:
            end = min(end, start + limit - 1)
        seq = await self._seq_of(topic, start, first, Stored(last_seq, Event(
            topic, "", last, "", {})))
        events = await self._range(topic, seq, start, end)
        return HistoryPage(events, epoch, first.event.offset, last)

    async def read(self, topic: str, after: int, limit: int) -> HistoryPage:
        return await self._page(topic, after + 1, 1 << 62, limit, newest=False)

    async def read_last(self, topic: str, count: int) -> HistoryPage:
        return await self._page(topic, 1, 1 << 62, count, newest=True)

    async def read_before(self, topic: str, before: int, limit: int) -> HistoryPage:
        return await self._page(topic, 1, before - 1, limit, newest=True)

    async def _seq_of(self, topic: str, offset: int, low: Stored, high: Stored) -> int:
        """The stream sequence of a retained offset of `topic`, `low` and `high` being
        retained messages around it."""
        if low.event.offset == offset:
            return low.seq
        if high.event.offset == offset:
            return high.seq
        hints = self._hints.get(topic)
        if hints and hints[0][0] <= offset <= hints[-1][0]:
            hinted_offset, hinted_seq = hints[offset - hints[0][0]]
            if hinted_offset == offset:
                return hinted_seq
        # invariant: the target lies in (lo, hi]; `lo` is a message below it
        lo, hi = low.seq, high.seq
        while lo < hi:
            middle = (lo + 1 + hi) // 2
            found = await self._get(topic, after=middle)
            if found is None:
                break
            if found.event.offset == offset:
                return found.seq
            if found.event.offset < offset:
                lo = found.seq
            else:
                hi = middle - 1
        found = await self._get(topic, after=lo + 1)  # a deleted message in between
        if found is None:
            raise unavailable("read")
        return found.seq

    async def _range(self, topic: str, seq: int, start: int, end: int) -> list[Event]:
        """The events with offsets start..end, the first being at stream sequence `seq`."""
        if end - start < DIRECT_RANGE:
            events: list[Event] = []
            while True:
                found = await self._get(topic, after=seq)
                if found is None or found.event.offset > end:
                    return events
                events.append(found.event)
                if found.event.offset == end:
                    return events
                seq = found.seq + 1
        return await self._scan(topic, seq, end)

    async def _scan(self, topic: str, seq: int, end: int) -> list[Event]:
        """A topic's messages from stream sequence `seq` through offset `end`, pushed by an
        ephemeral consumer (one request instead of one per message)."""
        nc, js = self._nc, self.js
        assert nc is not None
        count = end + 1
        inbox = nc.new_inbox()
        try:
            sub = await nc.subscribe(inbox, pending_msgs_limit=count + 1024,
                                     pending_bytes_limit=1 << 30)
            consumer = await js.add_consumer(self.stream, api.ConsumerConfig(
                deliver_subject=inbox, filter_subject=self.subject(topic),
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=seq,
                ack_policy=api.AckPolicy.NONE, mem_storage=True, num_replicas=1,
                inactive_threshold=30.0))
        except NATS_DOWN as exc:
            raise unavailable("read", exc) from None
        found: list[Event] = []
        try:
            while True:
                msg = await sub.next_msg(timeout=self.config.command_timeout)
                event = self._event(topic, msg.headers or {}, msg.data)
                if event.offset > end:
                    break
                found.append(event)
                if event.offset == end or msg.metadata.num_pending == 0:
                    break
        except NATS_DOWN as exc:
            raise unavailable("read", exc) from None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await js.delete_consumer(self.stream, consumer.name)
        return found

    # -- the reader -----------------------------------------------------------------------

    async def _read(self) -> None:
        nc = self._nc
        assert nc is not None
        if not nc.is_connected:
            raise Stalled("not connected")
        self._restart.clear()
        try:
            info = await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            info = await self._ensure_streams()
        if epoch_of(info) != self._epoch:
            self._new_lineage(epoch_of(info))
        heartbeat = self.config.heartbeat
        sub = await nc.subscribe(nc.new_inbox(), pending_msgs_limit=1 << 20,
                                 pending_bytes_limit=1 << 30)
        consumer: api.ConsumerInfo | None = None
        try:
            consumer = await self.js.add_consumer(self.stream, api.ConsumerConfig(
                deliver_subject=sub.subject, filter_subject=f"{self.prefix}.*",
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self._cursor + 1, ack_policy=api.AckPolicy.NONE,
                flow_control=True, idle_heartbeat=heartbeat, mem_storage=True, num_replicas=1,
                inactive_threshold=max(30.0, 10 * heartbeat)))
            self._connected()
            await self._consume(nc, sub)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            if consumer is not None and nc.is_connected:
                with contextlib.suppress(Exception):
                    await self.js.delete_consumer(self.stream, consumer.name)

    async def _consume(self, nc: NATS, sub: Subscription) -> None:
        delivered = 0  # consumer sequence: a skipped one means a lost message
        silence = 3 * self.config.heartbeat
        while not self._restart.is_set():
            msgs = [await sub.next_msg(timeout=silence)]
            while sub.pending_msgs:
                msgs.append(await sub.next_msg())
            events: list[Event] = []
            for msg in msgs:
                if msg.headers and msg.headers.get("Status") == "100" and not msg.data:
                    await self._control(nc, msg, delivered)
                    continue
                meta = msg.metadata
                if meta.sequence.consumer != delivered + 1:
                    raise Stalled(f"deliveries {delivered + 1}..{meta.sequence.consumer - 1} "
                                  "were lost")
                delivered = meta.sequence.consumer
                event = self._decode(msg)
                if event is not None:
                    events.append(event)
                    self._seen(event, meta.sequence.stream)
                self._cursor = meta.sequence.stream
            self._fan_out(events)

    async def _control(self, nc: NATS, msg: Msg, delivered: int) -> None:
        """Flow-control requests are answered; a heartbeat naming a later delivery than the
        last one received means messages were lost."""
        headers = msg.headers or {}
        if msg.reply:
            await nc.publish(msg.reply, b"")
        stalled = headers.get("Nats-Consumer-Stalled")
        if stalled:
            await nc.publish(stalled, b"")
        last = headers.get("Nats-Last-Consumer")
        if last is not None and int(last) > delivered:
            raise Stalled(f"the server delivered up to {last}, this node got {delivered}")

    def _decode(self, msg: Msg) -> Event | None:
        topic = msg.subject[len(self.prefix) + 1:]
        try:
            return self._event(topic, msg.headers or {}, msg.data)
        except HubError as exc:
            log.warning("skipping stream sequence %d: %s", msg.metadata.sequence.stream,
                        exc.message)
            return None

    def _seen(self, event: Event, seq: int) -> None:
        self._note(event.topic, seq, event.offset)
        hints = self._hints.get(event.topic)
        if hints is None or (hints and hints[-1][0] + 1 != event.offset):
            hints = self._hints[event.topic] = deque(maxlen=HINTS)
        hints.append((event.offset, seq))

    def _fan_out(self, events: list[Event]) -> None:
        fresh: list[Event] = []
        gaps: list[str] = []
        for event in events:
            before = self._delivered.get(event.topic)
            if before is not None and event.offset <= before:
                continue
            if before is not None and event.offset != before + 1 and event.topic not in gaps:
                gaps.append(event.topic)
            self._delivered[event.topic] = event.offset
            fresh.append(event)
        self._hand_over(fresh, gaps)

    def _new_lineage(self, epoch: str) -> None:
        """The stream was deleted and made again: offsets start over in a new epoch."""
        if self._epoch:
            log.warning("stream %s was re-created (epoch %s -> %s); offsets start over",
                        self.stream, self._epoch, epoch)
            self.resync(list(self._delivered), LOST)
        self._epoch = epoch
        self._cursor = 0
        self._last.clear()
        self._delivered.clear()
        self._hints.clear()
        self._wake()
