"""Connection benchmark: idle subscribed connections one hub process holds, and the memory
each costs.

    .venv/bin/python -m bench.connections                  # 15,000 connections
    .venv/bin/python -m bench.connections --connections 2000 --tracemalloc

The hub runs alone in its own process (`bench.server`). Client worker processes (this
module with `--worker`) open the connections, each subscribing to the bench topic, and
hold them idle. KiB per connection is (hub RSS after N connections - hub RSS before any)
/ N; RSS does not include the kernel's socket buffers. At the end one event is published
and every connection must receive it: a connection counts as held only then.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from typing import Any

import aiohttp

from bench.server import raise_nofile
from bench.wsload import (
    ROOT,
    Publisher,
    ServerProcess,
    WsClient,
    close_all,
    connect_clients,
    stop_child,
)

TARGET_CONNECTIONS = 15_000
TARGET_KIB = 16.0
PER_WORKER = 8000


async def worker(args: argparse.Namespace) -> None:
    """Hold `--hold` subscribed connections; answer `count` on stdin with how many got an
    event; exit when stdin closes (the parent ended, whichever way)."""
    raise_nofile()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sources = [f"127.0.0.{n}" for n in range(args.first_source, args.first_source + args.sources)]
    clients: list[WsClient] = []
    try:
        clients = await connect_clients("127.0.0.1", args.port, args.hold,
                                        concurrency=args.concurrency, sources=sources,
                                        timeout=args.timeout)
        print(f"READY {len(clients)}", flush=True)
        while line := await reader.readline():
            if line.strip() == b"count":
                alive = sum(1 for c in clients if c.counted > 0 and not c.lost)
                print(f"COUNT {alive}", flush=True)
    finally:
        await close_all(clients, wait=5.0)


class Worker:
    """One client worker process, driven over its stdin and stdout."""

    def __init__(self, port: int, hold: int, index: int, args: argparse.Namespace) -> None:
        self.cmd = [sys.executable, "-m", "bench.connections", "--worker", "--port", str(port),
                    "--hold", str(hold), "--sources", str(args.sources),
                    "--first-source", str(1 + index * args.sources),
                    "--concurrency", str(args.concurrency), "--timeout", str(args.timeout)]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.cmd, cwd=str(ROOT), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)

    async def expect(self, word: str, timeout: float) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        parts = line.decode().split()
        if len(parts) != 2 or parts[0] != word:
            raise RuntimeError(f"worker said {line!r}, expected {word}")
        return int(parts[1])

    async def ask(self, command: str, word: str, timeout: float) -> int:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.expect(word, timeout)

    async def stop(self) -> None:
        await stop_child(self.proc, 30)


async def settled_rss(server: ServerProcess, seconds: float = 2.0) -> int:
    """The hub's RSS once it stops moving (the last of a few samples)."""
    samples = []
    for _ in range(max(1, int(seconds / 0.25))):
        samples.append(server.rss_kib())
        await asyncio.sleep(0.25)
    return samples[-1]


async def memory_top(base: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        for key, params in (("filename", {"group": "filename"}),
                            ("lineno", {"group": "lineno"}),
                            ("hub", {"group": "lineno", "match": "ocos_hub"})):
            async with http.get(f"{base}/bench/memory", params=params) as resp:
                result[key] = await resp.json()
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    extra = ["--tracemalloc"] if args.tracemalloc else []
    async with ServerProcess("hub", extra) as server:
        rss_before = await settled_rss(server)
        procs = max(args.client_procs, math.ceil(args.connections / PER_WORKER))
        shares = [args.connections // procs + (i < args.connections % procs)
                  for i in range(procs)]
        workers = [Worker(server.port, share, i, args) for i, share in enumerate(shares)]
        pub = Publisher(server.base)
        started = time.perf_counter()
        try:
            await asyncio.gather(*(w.start() for w in workers))
            opened = sum(await asyncio.gather(*(w.expect("READY", args.timeout + 30)
                                                for w in workers)))
            connect_seconds = time.perf_counter() - started
            await asyncio.sleep(args.hold_seconds)
            rss_after = await settled_rss(server)
            stats = await pub.stats()
            top = await memory_top(server.base) if args.tracemalloc else {}
            await pub.post(1)
            deadline = time.perf_counter() + 30
            held = 0
            while time.perf_counter() < deadline:
                held = sum(await asyncio.gather(*(w.ask("count", "COUNT", 30)
                                                  for w in workers)))
                if held >= opened:
                    break
                await asyncio.sleep(0.5)
        finally:
            await pub.close()
            await asyncio.gather(*(w.stop() for w in workers))
    return {
        "connections": args.connections, "opened": opened, "held": held,
        "hub_sessions": stats["sessions"], "hub_subscriptions": stats["subscriptions"],
        "connect_seconds": connect_seconds, "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_connection": (rss_after - rss_before) / max(1, opened),
        "client_procs": procs, "tracemalloc_top": top,
    }


def report(result: dict[str, Any]) -> list[str]:
    failed = []
    held_ok = result["held"] >= TARGET_CONNECTIONS
    kib_ok = result["kib_per_connection"] <= TARGET_KIB
    if not held_ok:
        failed.append(f">= {TARGET_CONNECTIONS:,} connections")
    if not kib_ok:
        failed.append(f"<= {TARGET_KIB:.0f} KiB/connection")
    rows = [
        ("connections held", f"{result['held']:,} of {result['connections']:,} "
         f"(hub sessions {result['hub_sessions']:,}, subscriptions "
         f"{result['hub_subscriptions']:,})", "ok" if held_ok else "MISSED"),
        ("opened in", f"{result['connect_seconds']:.1f} s by {result['client_procs']} "
         "client process(es)", ""),
        ("hub RSS before / after", f"{result['rss_before_kib'] / 1024:.1f} / "
         f"{result['rss_after_kib'] / 1024:.1f} MiB", ""),
        ("KiB per connection", f"{result['kib_per_connection']:.2f}", "ok" if kib_ok
         else "MISSED"),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print()
    print(f"{'measure':<{width}}  {'value':<{vwidth}}  target")
    print("-" * (width + vwidth + 12))
    for name, value, verdict in rows:
        print(f"{name:<{width}}  {value:<{vwidth}}  {verdict}")
    if result["tracemalloc_top"]:
        per = max(1, result["opened"])
        traced = result["tracemalloc_top"]["lineno"]
        print(f"\nPython allocations since READY, per connection: {traced['total'] / per:.0f} B "
              f"in {traced['blocks'] / per:.1f} blocks (tracemalloc; its own overhead "
              "inflates RSS in this mode).")
        for group in ("filename", "lineno", "hub"):
            print(f"Largest sources by {group}:")
            for row in result["tracemalloc_top"][group]["top"][:20]:
                where = row["where"].replace(str(ROOT) + "/", "").split("site-packages/")[-1]
                print(f"  {row['size'] / per:8.0f} B  {row['count'] / per:6.1f} blocks  {where}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=TARGET_CONNECTIONS)
    parser.add_argument("--client-procs", type=int, default=1,
                        help=f"client processes (at least one per {PER_WORKER} connections)")
    parser.add_argument("--sources", type=int, default=2,
                        help="127.0.0.x source addresses per client process (ephemeral ports)")
    parser.add_argument("--concurrency", type=int, default=256, help="handshakes in flight")
    parser.add_argument("--hold-seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also show where the hub's Python memory per connection goes")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first-source", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker(args))
        return 0
    raise_nofile()
    started = time.perf_counter()
    result = asyncio.run(run(args))
    failed = report(result)
    print(f"\n{time.perf_counter() - started:.1f} s in all; "
          + ("all targets met" if not failed else f"missed: {', '.join(failed)}"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
