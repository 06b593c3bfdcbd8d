"""Fan-out through the Redis broker, beside the memory broker.

    .venv/bin/python -m bench.fanout_redis            # memory, redis, redis across two nodes
    .venv/bin/python -m bench.fanout_redis --quick

Each hub node runs in its own process (`python -m bench.fanout_redis serve ...`); the
subscribers (`bench.wsload` raw clients, a sample of them parsing every frame) and the HTTP
publisher run here. Scenarios:
  memory    one node, the default memory broker (the baseline)
  redis     one node on Redis Streams: every event goes through Redis and the node's reader
  redis-2   two nodes on one Redis: published on node A, subscribers on node B
For each: throughput (closed loop: the publisher stays at most `--window` events ahead of
the slowest subscriber; deliveries/s and events/s) and publish-to-receive latency p50/p99 at
a fixed offered rate. Each run uses its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from bench.server import BenchTopics, raise_nofile
from bench.wsload import ROOT, Publisher, WsClient, close_all, connect_clients, percentile
from ocos_hub.app import HUB, create_app
from ocos_hub.config import parse_config


@dataclass
class Result:
    scenario: str
    subscribers: int
    events: int
    seconds: float
    events_per_s: float
    deliveries_per_s: float
    complete: bool
    rate: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int


# -- the server side ----------------------------------------------------------------------

def node_app(broker: str, url: str, prefix: str) -> web.Application:
    plugins: dict[str, Any] = {"enabled": ["bench"]}
    if broker == "redis":
        plugins["enabled"].append("redis")
        plugins["redis"] = {"url": url, "prefix": prefix, "ingest": False}
    config = parse_config({
        "server": {"heartbeat": 3600.0, "shutdown_grace": 0},
        "access": {"anonymous": ["subscribe:*", "publish:*"]},
        "history": {"max_events": 100_000},
        "plugins": plugins,
    }, "bench config")
    app = create_app(config, plugins=[("bench", BenchTopics())])

    async def stats(request: web.Request) -> web.Response:
        hub = request.app[HUB]
        return web.json_response({"deliveries": hub.router.deliveries,
                                  "published": hub.stats.published})

    app.router.add_get("/bench/stats", stats)
    return app


def serve(args: argparse.Namespace) -> None:
    raise_nofile()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    app = node_app(args.broker, args.url, args.prefix)
    port = sock.getsockname()[1]

    async def announce(app: web.Application) -> None:
        print(f"READY {port} {os.getpid()}", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=1.0)


class Node:
    """One hub node process."""

    def __init__(self, broker: str, url: str, prefix: str) -> None:
        self.argv = [sys.executable, "-m", "bench.fanout_redis", "serve", "--broker", broker,
                     "--url", url, "--prefix", prefix]
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    async def __aenter__(self) -> Node:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode().split()
        if len(line) != 3 or line[0] != "READY":
            await self.__aexit__()
            raise RuntimeError(f"node did not start: {line}")
        self.port = int(line[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# -- the load side ------------------------------------------------------------------------

def least(readers: list[WsClient], base: list[int]) -> int:
    size = WsClient.frame_size or 1
    return min((c.counted - b for c, b in zip(readers, base, strict=True)), default=0) // size


async def arrived(readers: list[WsClient], base: list[int], target: int, timeout: float,
                  ) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if least(readers, base) >= target:
            return True
        await asyncio.sleep(0.002)
    return False


async def learn_frame_size(pub: Publisher, readers: list[WsClient]) -> None:
    samplers = [c for c in readers if c.parse]
    seen = [c.events for c in samplers]
    base = [c.counted for c in readers]
    await pub.post(1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while any(c.events == s for c, s in zip(samplers, seen, strict=True)):
        if loop.time() > deadline:
            raise RuntimeError("the probe event did not arrive")
        await asyncio.sleep(0.005)
    sizes = {c.last_size for c in samplers}
    if len(sizes) != 1:
        raise RuntimeError(f"frames differ in size: {sizes}")
    WsClient.frame_size = sizes.pop()
    if not await arrived(readers, base, 1, 30):
        raise RuntimeError("the probe event did not reach every subscriber")
    for client in samplers:
        client.disorder = 0


async def throughput(pub: Publisher, readers: list[WsClient], events: int, batch: int,
                     inflight: int, window: int) -> tuple[float, bool]:
    base = [c.counted for c in readers]
    published = 0

    async def worker() -> None:
        nonlocal published
        while published < events:
            count = min(batch, events - published)
            while published + count - least(readers, base) > window:
                await asyncio.sleep(0.0005)
            published += count
            await pub.post(count)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    complete = await arrived(readers, base, events, 60)
    return time.perf_counter() - start, complete


async def latency(pub: Publisher, readers: list[WsClient], rate: float, seconds: float,
                  per_post: int) -> list[float]:
    samplers = [c for c in readers if c.parse]
    for client in samplers:
        client.latencies.clear()
        client.record = True
    base = [c.counted for c in readers]
    last0 = pub.last_offset
    loop = asyncio.get_running_loop()
    interval = per_post / rate
    start = loop.time()
    pending = set()
    for index in range(max(1, round(seconds / interval))):
        delay = start + index * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(pub.post(per_post))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    await arrived(readers, base, pub.last_offset - last0, 30)
    for client in samplers:
        client.record = False
    return [x for c in samplers for x in c.latencies]


async def scenario(name: str, args: argparse.Namespace) -> Result:
    prefix = f"bench-{secrets.token_hex(4)}"
    broker = "memory" if name == "memory" else "redis"
    nodes = [Node(broker, args.url, prefix) for _ in range(2 if name == "redis-2" else 1)]
    for node in nodes:
        await node.__aenter__()
    try:
        publish_on, subscribe_on = nodes[0], nodes[-1]
        pub = Publisher(publish_on.base)
        await pub.advance(args.events + 20_000)
        readers = await connect_clients("127.0.0.1", subscribe_on.port, args.subscribers,
                                        parse_every=args.sample_every)
        await learn_frame_size(pub, readers)
        seconds, complete = await throughput(pub, readers, args.events, args.batch,
                                             args.inflight, args.window)
        latencies = await latency(pub, readers, args.rate, args.seconds, args.per_post)
        disorder = sum(c.disorder + c.odd_sizes for c in readers)
        await close_all(readers)
        await pub.close()
        return Result(name, args.subscribers, args.events, seconds, args.events / seconds,
                      args.events * args.subscribers / seconds, complete and not disorder,
                      args.rate, percentile(latencies, 50) * 1e3,
                      percentile(latencies, 99) * 1e3, len(latencies))
    finally:
        for node in nodes:
            await node.__aexit__()
        if broker == "redis":
            await forget(args.url, prefix)


async def forget(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def run(args: argparse.Namespace) -> list[Result]:
    raise_nofile()
    return [await scenario(name, args) for name in args.scenarios]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    node = commands.add_parser("serve", help="run one hub node (used by the benchmark)")
    node.add_argument("--broker", choices=("memory", "redis"), default="memory")
    node.add_argument("--url", default="redis://127.0.0.1:6379/0")
    node.add_argument("--prefix", default="bench")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--scenarios", nargs="+", default=["memory", "redis", "redis-2"],
                        choices=("memory", "redis", "redis-2"))
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--inflight", type=int, default=4)
    parser.add_argument("--window", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=500.0, help="events/s offered in the "
                        "latency run (well below the throughput: latency, not queueing)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--per-post", type=int, default=5)
    parser.add_argument("--sample-every", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args)
        return 0
    if args.quick:
        args.subscribers, args.events, args.seconds = 50, 10_000, 3.0
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    print(f"{'scenario':<9} {'subs':>5} {'events/s':>10} {'deliveries/s':>13} "
          f"{'p50 ms':>8} {'p99 ms':>8}  at {args.rate:.0f} ev/s  complete")
    for r in results:
        print(f"{r.scenario:<9} {r.subscribers:>5} {r.events_per_s:>10,.0f} "
              f"{r.deliveries_per_s:>13,.0f} {r.latency_p50_ms:>8.2f} {r.latency_p99_ms:>8.2f}"
              f"  ({r.latency_samples} samples)  {r.complete}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
