"""The server side of the benchmarks: the hub (or a naive aiohttp loop) in its own process.

`python -m bench.server --impl hub|naive` binds a free port on 127.0.0.1, prints
`READY <port> <pid>` on stdout and serves until SIGTERM, until its parent dies, or until
`--max-seconds` pass, so a crashed benchmark never leaves a server behind.
Both implementations speak the same subset of `ocos.v1` (welcome, subscribe/ack, event
frames, `POST /api/v1/events`), so one client drives both, and both expose
`GET /bench/stats` for the hub's own counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import resource
import signal
import socket
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict

from ocos_hub import Topic, hookimpl
from ocos_hub.app import HUB, create_app, serving
from ocos_hub.config import parse_config
from ocos_hub.protocol import PROTOCOL, now_rfc3339

TOPIC = "bench"
KIND = "tick"


class BenchData(BaseModel):
    """One benchmark event: a sequence number, the publisher's send time and padding.

    Integers of fixed width (see bench.wsload), so that every event frame has one size.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    seq: int
    sent: int
    pad: str


class BenchTopics:
    """The benchmark's topic, registered like any third-party topic plugin."""

    @hookimpl
    def ocos_topics(self, config: Any) -> list[Topic]:
        return [Topic(TOPIC, {KIND: BenchData}, None, "benchmark events")]


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard one: every socket is a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (kernel socket buffers are not in it)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WriteTimer:
    """Diagnostics (`--diag`): wraps the hub's outbox to count the feed writes and the time
    spent writing, i.e. the cost of one connection's write, and how long an event waits in
    a feed before a member is written it."""

    def __init__(self) -> None:
        from ocos_hub import outbox

        self.calls = 0
        self.writes = 0
        self.seconds = 0.0
        self.waits: list[float] = []  # from an event's append to a member's write of it
        appended: dict[int, list[float]] = {}  # id(feed) -> append time of each frame
        run, append, take = outbox.Outbox._run, outbox.Feed.append, outbox.Feed.take
        timer = self

        def timed_run(box: Any) -> None:
            start = time.perf_counter()
            try:
                run(box)
            finally:
                timer.seconds += time.perf_counter() - start
                timer.calls += 1

        def timed_append(feed: Any, frame: bytes) -> None:
            appended.setdefault(id(feed), []).append(time.perf_counter())
            append(feed, frame)

        def timed_take(feed: Any, sess: Any) -> bytes:
            cursor = feed.members.get(sess)
            times = appended.get(id(feed), ())
            if cursor is not None and cursor < len(times):
                timer.writes += 1
                if len(timer.waits) < 2_000_000:
                    timer.waits.append(time.perf_counter() - times[cursor])
            return take(feed, sess)  # type: ignore[no-any-return]

        setattr(outbox.Outbox, "_run", timed_run)  # noqa: B010 (a diagnostic patch)
        setattr(outbox.Feed, "append", timed_append)  # noqa: B010
        setattr(outbox.Feed, "take", timed_take)  # noqa: B010

    def stats(self) -> dict[str, Any]:
        waits = sorted(self.waits)
        self.waits.clear()

        def pick(q: float) -> float:
            return waits[min(len(waits) - 1, int(q * len(waits)))] if waits else 0.0

        return {"sweep_calls": self.calls, "writes": self.writes,
                "write_seconds": self.seconds, "wait_p50": pick(0.5), "wait_p99": pick(0.99)}


# Every middleware on (issue 5), with limits far above what the bench sends, so that
# their cost is measured and never their refusals.
MIDDLEWARE = {
    "enabled": ["origin", "ratelimit", "audit", "metrics", "logging", "compression"],
    "origin": {"allowed_origins": ["http://127.0.0.1"]},
    "ratelimit": {"messages_per_second": 1e6, "burst": 1_000_000,
                  "principal_messages_per_second": 1e6, "principal_burst": 1_000_000,
                  "connections_per_second": 1e6, "connection_burst": 1_000_000,
                  "max_connections_per_ip": 1_000_000, "http_requests_per_second": 1e6,
                  "http_burst": 1_000_000},
    "logging": {"level": "WARNING"},
}


def hub_app(heartbeat: float, send_buffer: int, diag: WriteTimer | None = None,
            middleware: bool = False, compression: dict[str, int] | None = None
            ) -> web.Application:
    """The hub with the bench topic; `compression` enables the plugin with that config
    (with or without the rest of the middleware)."""
    plugins: dict[str, Any] = {"enabled": ["bench"]}
    if middleware:
        audit = os.path.join(tempfile.mkdtemp(prefix="ocos-bench-"), "audit.jsonl")
        plugins = {**MIDDLEWARE, "enabled": ["bench", *MIDDLEWARE["enabled"]],
                   "audit": {"path": audit}}
    if compression is not None:
        if "compression" not in plugins["enabled"]:
            plugins["enabled"] = [*plugins["enabled"], "compression"]
        plugins["compression"] = compression
    config = parse_config({
        "server": {"heartbeat": heartbeat, "shutdown_grace": 0,
                   "send_buffer_bytes": send_buffer},
        "access": {"anonymous": ["subscribe:*", "publish:*"]},
        "plugins": plugins,
    }, "bench config")
    app = create_app(config, plugins=[("bench", BenchTopics())])

    async def stats(request: web.Request) -> web.Response:
        hub = request.app[HUB]
        return web.json_response({
            "sessions": len(hub.sessions),
            "subscriptions": hub.router.count(),
            "deliveries": hub.router.deliveries,
            "published": hub.stats.published,
            "slow_consumers": hub.stats.slow_consumers,
            **(diag.stats() if diag is not None else {}),
        })

    app.router.add_get("/bench/stats", stats)
    return app


class Naive:
    """The loop the hub is measured against: per event and per receiver, json.dumps and
    `await ws.send_str`, as a straightforward aiohttp server would do it."""

    def __init__(self) -> None:
        self.receivers: list[web.WebSocketResponse] = []
        self.offset = 0
        self.deliveries = 0
        self.published = 0

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "welcome", "protocol": PROTOCOL}))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                if req.get("type") == "subscribe" and ws not in self.receivers:
                    self.receivers.append(ws)
                    await ws.send_str(json.dumps({"type": "ack", "id": req.get("id"),
                                                  "op": "subscribe", "topic": req["topic"],
                                                  "offset": self.offset}))
        finally:
            if ws in self.receivers:
                self.receivers.remove(ws)
        return ws

    async def publish(self, request: web.Request) -> web.Response:
        body = await request.json()
        items = body["events"] if "events" in body else [body]
        offsets = []
        for item in items:
            data = BenchData.model_validate(item["data"]).model_dump(mode="json")
            self.offset += 1
            event = {"type": "event", "topic": item["topic"], "event": item["event"],
                     "offset": self.offset, "ts": now_rfc3339(), "data": data}
            for ws in list(self.receivers):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(json.dumps(event))
                    self.deliveries += 1
            self.published += 1
            offsets.append(self.offset)
        return web.json_response({"offsets": offsets})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "sessions": len(self.receivers), "subscriptions": len(self.receivers),
            "deliveries": self.deliveries, "published": self.published, "slow_consumers": 0,
        })


def naive_app() -> web.Application:
    naive = Naive()
    app = web.Application()
    app.router.add_get("/ws", naive.websocket)
    app.router.add_post("/api/v1/events", naive.publish)
    app.router.add_get("/bench/stats", naive.stats)
    return app


def watchdog(max_seconds: float) -> Any:
    """A cleanup context that stops the server when its parent dies or time runs out."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        parent = os.getppid()

        async def watch() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max_seconds
            while loop.time() < deadline and os.getppid() == parent:
                await asyncio.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(watch())
        yield
        task.cancel()

    return ctx


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=("hub", "naive"), default="hub")
    parser.add_argument("--heartbeat", type=float, default=3600.0,
                        help="hub ping interval; long, since the counting clients never pong")
    parser.add_argument("--send-buffer", type=int, default=1 << 20,
                        help="hub per-connection outgoing bound (slow-consumer limit)")
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--cprofile", metavar="FILE", help="write a cProfile of the run here")
    parser.add_argument("--diag", action="store_true",
                        help="time the hub's writes (reported by /bench/stats)")
    parser.add_argument("--middleware", action="store_true",
                        help="enable every middleware plugin (origin, ratelimit, audit, "
                        "metrics, logging, compression)")
    parser.add_argument("--compress", action="store_true",
                        help="enable the compression plugin (permessage-deflate)")
    parser.add_argument("--compress-level", type=int, default=6, help="its zlib level")
    parser.add_argument("--compress-min-size", type=int, default=256,
                        help="its min_size: shorter event payloads stay uncompressed")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="serve GET /bench/memory: Python allocations since READY")
    args = parser.parse_args(argv)
    if args.tracemalloc:
        tracemalloc.start()

    raise_nofile()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)  # clients may connect as soon as READY is printed
    port = sock.getsockname()[1]
    if args.impl == "hub":
        compression = ({"level": args.compress_level, "min_size": args.compress_min_size}
                       if args.compress else None)
        app = hub_app(args.heartbeat, args.send_buffer, WriteTimer() if args.diag else None,
                      args.middleware, compression)
    else:
        app = naive_app()
    serving(app)  # as `ocos-hub serve` does (the naive loop too, for a fair comparison)
    app.cleanup_ctx.append(watchdog(args.max_seconds))

    baseline: list[tracemalloc.Snapshot] = []

    async def announce(app: web.Application) -> None:
        gc.collect()
        if args.tracemalloc:
            baseline.append(tracemalloc.take_snapshot())
        print(f"READY {port} {os.getpid()}", flush=True)

    async def memory(request: web.Request) -> web.Response:
        gc.collect()
        group = request.query.get("group", "lineno")
        diff = tracemalloc.take_snapshot().compare_to(baseline[0], group)
        if "match" in request.query:
            diff = [stat for stat in diff if request.query["match"] in str(stat.traceback)]
        return web.json_response({
            "total": sum(stat.size_diff for stat in diff),
            "blocks": sum(stat.count_diff for stat in diff),
            "top": [{"where": str(stat.traceback), "size": stat.size_diff,
                     "count": stat.count_diff} for stat in diff[:30]],
        })

    if args.tracemalloc:
        app.router.add_get("/bench/memory", memory)

    app.on_startup.append(announce)
    profiler = cProfile.Profile() if args.cprofile else None
    if profiler is not None:
        profiler.enable()
    try:
        web.run_app(app, sock=sock, backlog=4096, print=None, access_log=None,
                    shutdown_timeout=1.0)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
