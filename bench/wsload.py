"""Load-side machinery shared by the benchmarks: cheap raw WebSocket clients, the server
process, and the HTTP publisher.

A benchmark client must cost far less than the hub it measures. Every event frame of a
run has the same size (fixed-width `seq`, `sent` and `offset`, see `Publisher`), so most
clients are raw asyncio BufferedProtocols that read into one shared scratch buffer and
only add up bytes: events = bytes / frame size, with no per-frame or per-byte work at
all. A sample of clients parse every frame, which checks the frame size and the order
and measures latency.

With permessage-deflate (`deflate=True`) frames differ in size, but the hub sends every
receiver the same shared compressed frame: the parsing clients record each frame's wire
size, and `SharedFrames` turns the counting clients' byte counts into events with them.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import itertools
import json
import mmap
import operator
import os
import secrets
import socket
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from bench.counter import DEFLATE_OFFER, check_deflate
from bench.server import KIND, TOPIC, cpu_seconds, rss_kib

ROOT = Path(__file__).resolve().parent.parent
# Fixed widths: `seq` has 10 digits, `sent` 13 (microseconds since T0, plus SENT_BASE),
# and the hub's offsets as many as `Publisher.advance` gave them.
SEQ_BASE = 10**9
SENT_BASE = 10**12
T0 = time.perf_counter()
WALL0 = time.time() - T0  # perf_counter() + WALL0 is wall-clock time (for the hub's `ts`)
# Counting clients never keep what they read: one buffer serves them all.
_SCRATCH = memoryview(bytearray(256 * 1024))
_decode = json.JSONDecoder().decode
# RFC 7692 7.2.2: the tail the sender dropped from each compressed message
DEFLATE_TAIL = b"\x00\x00\xff\xff"


def stamp() -> int:
    """Now, as the fixed-width integer the publisher puts in `data.sent`."""
    return SENT_BASE + int((time.perf_counter() - T0) * 1e6)


def unstamp(sent: int) -> float:
    """A `sent` stamp back as a `time.perf_counter()` value."""
    return T0 + (sent - SENT_BASE) / 1e6


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame: RFC 6455 requires clients to mask, servers reject unmasked ones."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


class WsClient(asyncio.BufferedProtocol):
    """One raw subscriber. Parses frames until its subscribe is acked, then either keeps
    parsing (`parse=True`: frame sizes, order, latency) or only adds up bytes.

    `counted` is the bytes of event frames since the ack; `delivered` turns it into events
    with the run's one frame size, `WsClient.frame_size`. With `deflate` it offers
    permessage-deflate (the hub must agree), and a parsing client also keeps each event
    frame's wire size (`sizes`) and what the frames would have weighed uncompressed.
    """

    frame_size: ClassVar[int] = 0

    def __init__(self, host: str, port: int, parse: bool, topic: str = TOPIC,
                 deflate: bool = False) -> None:
        self.host, self.port, self.parse, self.topic = host, port, parse, topic
        self.deflate = deflate
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.counted = 0
        self.events = 0  # parsed event frames (parsing clients only)
        self.close_code: int | None = None
        self.lost = False
        self.last_offset = 0
        self.disorder = 0
        self.odd_sizes = 0
        self.last_size = 0
        self.sizes: list[int] = []  # wire size of each event frame (deflate only)
        self.inflated = 0  # bytes of those frames uncompressed (deflate only)
        self.plain_events = 0  # events that came uncompressed (deflate only)
        self.latencies: list[float] = []
        self.hub_latencies: list[float] = []  # from the hub's `ts` (ms precision) on
        self.record = False
        self._buf = bytearray()
        self._handshaken = False
        self._counting = False

    @property
    def delivered(self) -> int:
        return self.counted // self.frame_size if self.frame_size else 0

    # -- connection -----------------------------------------------------------------------

    def factory(self) -> WsClient:
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((
            f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocos.v1\r\n"
            f"{DEFLATE_OFFER if self.deflate else ''}\r\n"
        ).encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost before subscribed: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def stop_reading(self) -> None:
        """Become a slow consumer: the kernel buffers fill and the hub's queue grows."""
        if self.transport is not None:
            self.transport.pause_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- receiving ------------------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        return _SCRATCH

    def buffer_updated(self, nbytes: int) -> None:
        if self._counting:
            self.counted += nbytes  # the whole hot path of a counting client
            return
        now = time.perf_counter()
        self._buf += _SCRATCH[:nbytes]
        if not self._handshaken:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.ready.set_exception(ConnectionError(status.decode(errors="replace")))
                self.close()
                return
            if self.deflate:
                try:
                    check_deflate(bytes(self._buf[:end]))
                except ConnectionError as exc:
                    self.ready.set_exception(exc)
                    self.close()
                    return
            del self._buf[:end + 4]
            self._handshaken = True
            assert self.transport is not None
            self.transport.write(masked_frame(json.dumps(
                {"type": "subscribe", "id": 1, "topic": self.topic}).encode()))
        self._frames(now)

    def _frames(self, now: float) -> None:
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 2:
            opcode = buf[pos] & 0x0F
            size = buf[pos + 1] & 0x7F
            head = 2
            if size == 126:
                if len(buf) - pos < 4:
                    break
                size = int.from_bytes(buf[pos + 2:pos + 4], "big")
                head = 4
            elif size == 127:
                if len(buf) - pos < 10:
                    break
                size = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 10
            if len(buf) - pos < head + size:
                break
            compressed = buf[pos] & 0x40  # RSV1: permessage-deflate
            payload = bytes(buf[pos + head:pos + head + size])
            pos += head + size
            if opcode == 0x1:
                inflated = 0
                if compressed:  # no context takeover: each message inflates on its own
                    payload = zlib.decompressobj(-15).decompress(payload + DEFLATE_TAIL)
                    n = len(payload)
                    inflated = n + (2 if n < 126 else 4 if n < 1 << 16 else 10)
                self._message(payload.decode(), head + size, now, inflated)
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big")
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(masked_frame(payload, 0xA))
            if self._counting:
                # the ack arrived: what followed it is event frames, counted in bulk
                self.counted += len(buf) - pos
                self._buf = bytearray()
                return
        del buf[:pos]

    def _message(self, payload: str, frame_size: int, now: float, inflated: int) -> None:
        """One text message; `inflated` is its frame's size uncompressed, 0 if it came so."""
        msg = _decode(payload)
        kind = msg.get("type")
        if kind == "event":
            self.events += 1
            self.counted += frame_size
            self.last_size = frame_size
            if self.deflate:
                self.sizes.append(frame_size)
                if not inflated:
                    self.plain_events += 1
                self.inflated += inflated or frame_size
            elif self.frame_size and frame_size != self.frame_size:
                self.odd_sizes += 1
            offset = msg["offset"]
            if offset != self.last_offset + 1:
                self.disorder += 1
            self.last_offset = offset
            if self.record:
                self.latencies.append(now - unstamp(msg["data"]["sent"]))
                published = datetime.fromisoformat(msg["ts"].replace("Z", "+00:00"))
                self.hub_latencies.append(now + WALL0 - published.timestamp())
        elif kind == "ack" and msg.get("id") == 1:
            self.last_offset = msg.get("offset", 0)
            if not self.parse:
                self._counting = True
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == "error" and not self.ready.done():
            self.ready.set_exception(ConnectionError(f"refused: {msg}"))


class CountFile:
    """The counters of the counting clients (bench.counter processes): one native
    unsigned 64-bit integer of bytes read per client, in a shared memory file."""

    def __init__(self, slots: int) -> None:
        directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, self.path = tempfile.mkstemp(prefix="ocos-bench-", dir=directory)
        try:
            os.ftruncate(fd, 8 * max(1, slots))
            self._map = mmap.mmap(fd, 0)
        finally:
            os.close(fd)
        self.values = memoryview(self._map).cast("Q")

    def close(self) -> None:
        self.values.release()
        self._map.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class CounterProcess:
    """A `bench.counter` process holding counting clients in slots from `first` on."""

    def __init__(self, port: int, counts: CountFile, first: int, rcvbuf: int = 0,
                 deflate: bool = False) -> None:
        self.cmd = [sys.executable, "-m", "bench.counter", "--port", str(port),
                    "--counts", counts.path, "--first", str(first), "--rcvbuf", str(rcvbuf)]
        if deflate:
            self.cmd.append("--deflate")
        self.first = first
        self.opened = 0
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd, cwd=str(ROOT), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)

    async def _command(self, line: str, answer: str, timeout: float) -> str:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()
        reply = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
        if not reply.startswith(answer):
            raise RuntimeError(f"counter process said {reply!r} to {line!r}")
        return reply

    async def open(self, count: int, timeout: float = 120.0) -> None:
        """Open and subscribe `count` more clients; returns once all are acked."""
        if count > 0:
            await self._command(f"open {count}", "OPENED", timeout)
            self.opened += count

    async def pause(self) -> None:
        await self._command("pause", "PAUSED", 30)

    @property
    def slots(self) -> range:
        return range(self.first, self.first + self.opened)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    async def stop(self) -> None:
        await stop_child(self.proc, 10)


async def stop_child(proc: asyncio.subprocess.Process | None, timeout: float) -> None:
    """Stop a process driven over stdin: close its stdin (it exits), kill it if it lingers."""
    if proc is None or proc.returncode is not None:
        return
    if proc.stdin is not None:
        with contextlib.suppress(ConnectionError):
            proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class SharedFrames:
    """Byte counts to event counts when frames differ in size (permessage-deflate) but
    every receiver gets the same frames: the cumulative wire sizes the parsing clients
    saw. Counts are since each client's subscribe, which for everyone came before the
    first event, so one table serves all."""

    def __init__(self, parsers: Sequence[WsClient]) -> None:
        self.parsers = parsers
        self.sizes: list[int] = []  # the longest record any parsing client has
        self.ends = [0]  # ends[n]: bytes of the first n event frames

    def count(self, nbytes: int) -> int:
        """Whole frames in the first `nbytes` bytes, as far as the parsing clients know."""
        if nbytes > self.ends[-1]:
            self._learn()
        return bisect.bisect_right(self.ends, nbytes) - 1

    def on_boundary(self, nbytes: int) -> bool:
        return self.ends[self.count(nbytes)] == nbytes

    def disagreeing(self) -> int:
        """Parsing clients whose frame sizes are not the others': a receiver that did not
        get the one shared frame."""
        self._learn()
        return sum(1 for c in self.parsers if c.sizes != self.sizes[:len(c.sizes)])

    def _learn(self) -> None:
        longest = max((c.sizes for c in self.parsers), key=len, default=[])
        new = longest[len(self.sizes):]
        if new:
            self.sizes += new
            last = self.ends[-1]
            self.ends += [last + end for end in itertools.accumulate(new)]


class Readers:
    """A set of subscribers that read: parsing clients here and counting-client slots;
    `frames` when frame sizes vary (permessage-deflate)."""

    def __init__(self, parsers: Sequence[WsClient], counts: CountFile, slots: range,
                 frames: SharedFrames | None = None) -> None:
        self.parsers = list(parsers)
        self.counts = counts
        self.slots = slots
        self.frames = frames

    def __len__(self) -> int:
        return len(self.parsers) + len(self.slots)

    def snapshot(self) -> list[int]:
        """Bytes of event frames each subscriber read so far."""
        values = self.counts.values[self.slots.start:self.slots.stop].tolist()
        return [c.counted for c in self.parsers] + values


def least_delivered(readers: Readers, base: Sequence[int]) -> int:
    """Events every subscriber got since `base` (a snapshot), in C-speed passes."""
    frames = readers.frames
    if frames is not None:  # frames are shared, so fewer bytes is never more frames
        return (frames.count(min(readers.snapshot(), default=0))
                - frames.count(min(base, default=0)))
    return (min(map(operator.sub, readers.snapshot(), base), default=0)
            // (WsClient.frame_size or 1))


async def connect_clients(
    host: str, port: int, count: int, *, parse_every: int = 0, concurrency: int = 200,
    sources: Sequence[str] = ("127.0.0.1",), rcvbuf: int = 0, timeout: float = 120.0,
    deflate: bool = False,
) -> list[WsClient]:
    """Open `count` subscribed clients, `concurrency` handshakes at a time; every
    `parse_every`-th one parses every frame. Source addresses rotate over `sources` so
    that many connections never run short of ephemeral ports."""
    loop = asyncio.get_running_loop()
    clients: list[WsClient] = []
    deadline = loop.time() + timeout
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> WsClient:
        parse = parse_every > 0 and index % parse_every == parse_every // 2
        source = sources[index % len(sources)]
        async with gate:
            for attempt in range(5):
                client = WsClient(host, port, parse, deflate=deflate)
                try:
                    sock = _socket(source, rcvbuf)
                    try:
                        await loop.sock_connect(sock, (host, port))
                    except BaseException:
                        sock.close()
                        raise
                    await loop.create_connection(client.factory, sock=sock)
                    await asyncio.wait_for(client.ready, max(1.0, deadline - loop.time()))
                    return client
                except OSError:  # ConnectionError and TimeoutError among them
                    client.close()
                    if attempt == 4 or loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    tasks = [asyncio.ensure_future(one(i)) for i in range(count)]
    try:
        clients = list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
        raise
    return clients


def _socket(source: str, rcvbuf: int) -> socket.socket:
    """A socket bound to `source`, to be connected. A small receive buffer (set before
    connect, so the advertised window stays small) makes a client that stops reading fill
    its kernel buffers in seconds."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source != "127.0.0.1":
        sock.bind((source, 0))
    sock.setblocking(False)
    return sock


class ServerProcess:
    """`python -m bench.server` in its own process; stopped (and killed if need be) on exit."""

    def __init__(self, impl: str, extra: Sequence[str] = ()) -> None:
        self.impl = impl
        self.extra = list(extra)
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.pid = 0

    async def __aenter__(self) -> ServerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.server", "--impl", self.impl, *self.extra,
            cwd=str(ROOT), stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        except BaseException:
            await self.stop()
            raise
        parts = line.decode().split()
        if len(parts) != 3 or parts[0] != "READY":
            await self.stop()
            raise RuntimeError(f"server did not start: {line!r}")
        self.port, self.pid = int(parts[1]), int(parts[2])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Publisher:
    """Publishes benchmark events through `POST /api/v1/events` in batches.

    Every event's frame has the same size: `seq` and `sent` are fixed-width integers and
    `advance` first brings the topic's offsets to a power of ten, which leaves `budget`
    events before they grow a digit. The pad is "x"s, or with `hex_pad` random hex digits
    of the same length: "x"s deflate to almost nothing, hex digits about as well as the
    hashes and ids of real events (to two thirds, in a message compressed on its own).
    """

    def __init__(self, base: str, pad_to: int = 250, hex_pad: bool = False) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, force_close=False))
        self.seq = SEQ_BASE
        self.last_offset = 0
        self.offset_base = 1
        # data of `pad_to` bytes once encoded: {"seq":N,"sent":T,"pad":"..."}
        size = max(0, pad_to - len(json.dumps(
            {"seq": SEQ_BASE, "sent": SENT_BASE, "pad": ""}, separators=(",", ":"))))
        self.pad = secrets.token_hex(size)[:size] if hex_pad else "x" * size

    async def close(self) -> None:
        await self.http.close()

    def body(self, count: int) -> bytes:
        sent = stamp()
        events = []
        for _ in range(count):
            self.seq += 1
            events.append({"topic": TOPIC, "event": KIND,
                           "data": {"seq": self.seq, "sent": sent, "pad": self.pad}})
        return json.dumps({"events": events}).encode()

    async def post(self, count: int) -> list[int]:
        async with self.http.post(f"{self.base}/api/v1/events", data=self.body(count),
                                  headers={"Content-Type": "application/json"}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"publish failed: {resp.status} {await resp.text()}")
            offsets: list[int] = (await resp.json())["offsets"]
            self.last_offset = max(self.last_offset, offsets[-1])
            return offsets

    async def advance(self, planned: int) -> None:
        """Publish (to nobody yet: the hub encodes nothing) until the next offset is the
        smallest power of ten that leaves room for `planned` more events."""
        base = 10
        while base * 9 < planned + 1000:
            base *= 10
        self.offset_base = base
        last = (await self.post(1))[-1]
        while last < base - 1:
            last = (await self.post(min(1000, base - 1 - last)))[-1]

    @property
    def budget(self) -> int:
        """Events left before offsets grow a digit (and frames a byte)."""
        return self.offset_base * 10 - 1 - self.last_offset

    async def stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/bench/stats") as resp:
            result: dict[str, Any] = await resp.json()
            return result


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def close_all(clients: Sequence[WsClient], wait: float = 2.0) -> None:
    for client in clients:
        client.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.closed for c in clients)), wait)
