"""Resume benchmark: how soon a client that missed 10,000 events is live again.

    .venv/bin/python -m bench.resume                      # memory and SQLite stores
    .venv/bin/python -m bench.resume --missed 10000 --runs 5 --store sqlite

The hub runs in its own process (`python -m bench.resume --serve ...`, the `replay`
extension with the store under test); the client runs here and parses every frame, as a
Python client does. Each run: the client subscribes, reads one event and disconnects;
`--missed` events are published over HTTP; the client reconnects and subscribes with
`since`. Timed from sending that subscribe: the ack, the last replayed event, and a live
event published as soon as the replay is in (its HTTP round trip included). Every run
checks that the offsets arrive complete and in order and that `recovered` is true.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from ocos_hub import Topic, hookimpl
from ocos_hub.app import create_app
from ocos_hub.config import parse_config
from ocos_hub.protocol import PROTOCOL

TOPIC = "resume"
KIND = "tick"
BATCH = 1000  # `[publish] max_batch`


class ResumeData(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    seq: int
    pad: str


class ResumeTopic:
    @hookimpl
    def ocos_topics(self, config: Any) -> list[Topic]:
        return [Topic(TOPIC, {KIND: ResumeData}, None, "resume benchmark events")]


# -- the hub process --------------------------------------------------------------------


def serve(store: str, path: str | None, missed: int, max_seconds: float) -> None:
    replay: dict[str, Any] = {"store": store, "max_events": 2 * missed + 10}
    if path:
        replay["path"] = path
    config = parse_config({
        "server": {"heartbeat": 3600, "shutdown_grace": 0},
        "access": {"anonymous": ["subscribe:*", "publish:*"]},
        "history": {"max_replay": 2 * missed + 10},
        "plugins": {"enabled": ["resume", "replay"], "replay": replay},
    }, "bench.resume config")
    app = create_app(config, plugins=[("resume", ResumeTopic())])

    async def watchdog(app: web.Application) -> AsyncIterator[None]:
        parent = os.getppid()

        async def watch() -> None:
            deadline = time.monotonic() + max_seconds
            while time.monotonic() < deadline and os.getppid() == parent:
                await asyncio.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(watch())
        yield
        task.cancel()

    app.cleanup_ctx.append(watchdog)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)

    async def announce(app: web.Application) -> None:
        print(f"READY {sock.getsockname()[1]}", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=1.0)


@contextlib.asynccontextmanager
async def hub_process(store: str, path: str | None, missed: int) -> AsyncIterator[str]:
    """Start the hub in a child process; yield its base URL; stop it."""
    args = [sys.executable, "-m", "bench.resume", "--serve", "--store", store,
            "--missed", str(missed)]
    if path:
        args += ["--path", path]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if not line.startswith("READY "):
            raise RuntimeError(f"the hub did not start: {line!r}")
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# -- the client -------------------------------------------------------------------------


@dataclass
class Run:
    store: str
    missed: int
    connect_ms: float  # handshake and welcome
    ack_ms: float  # from the subscribe request
    replayed_ms: float  # the last missed event received
    live_ms: float  # a live event received after the replay
    events_per_s: float  # replayed events per second, subscribe to last replayed


async def publish(http: aiohttp.ClientSession, base: str, seqs: range, pad: str) -> int:
    last = 0
    for start in range(seqs.start, seqs.stop, BATCH):
        body = {"events": [{"topic": TOPIC, "event": KIND, "data": {"seq": seq, "pad": pad}}
                           for seq in range(start, min(seqs.stop, start + BATCH))]}
        async with http.post(f"{base}/api/v1/events", json=body) as resp:
            resp.raise_for_status()
            last = (await resp.json())["offsets"][-1]
    return last


async def read_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=60)
    if msg.type is not aiohttp.WSMsgType.TEXT:
        raise RuntimeError(f"connection ended: {msg.type!r} {msg.data!r}")
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


async def one_run(http: aiohttp.ClientSession, base: str, store: str, missed: int,
                  pad: str, seq: int) -> tuple[Run, int]:
    url = f"{base.replace('http', 'ws', 1)}/ws"
    async with http.ws_connect(url, protocols=(PROTOCOL,)) as ws:
        await read_event(ws)  # welcome
        await ws.send_json({"type": "subscribe", "id": 1, "topic": TOPIC})
        ack = await read_event(ws)
        await publish(http, base, range(seq, seq + 1), pad)
        seen = await read_event(ws)
        assert seen["type"] == "event", seen
        since = {"offset": seen["offset"], "epoch": ack["epoch"]}
    seq += 1
    last = await publish(http, base, range(seq, seq + missed), pad)
    seq += missed

    started = time.perf_counter()
    async with http.ws_connect(url, protocols=(PROTOCOL,)) as ws:
        await read_event(ws)
        connected = time.perf_counter()
        await ws.send_json({"type": "subscribe", "id": 2, "topic": TOPIC, "since": since})
        ack = await read_event(ws)
        acked = time.perf_counter()
        if ack.get("type") != "ack" or ack.get("recovered") is not True:
            raise RuntimeError(f"not recovered: {ack!r}")
        expected = since["offset"] + 1
        while expected <= last:
            frame = await read_event(ws)
            if frame.get("offset") != expected:
                raise RuntimeError(f"expected offset {expected}, got {frame!r}")
            expected += 1
        replayed = time.perf_counter()
        await publish(http, base, range(seq, seq + 1), pad)
        frame = await read_event(ws)
        live = time.perf_counter()
        if frame.get("offset") != last + 1:
            raise RuntimeError(f"expected the live offset {last + 1}, got {frame!r}")
    seq += 1
    run = Run(store, missed,
              connect_ms=(connected - started) * 1000,
              ack_ms=(acked - connected) * 1000,
              replayed_ms=(replayed - connected) * 1000,
              live_ms=(live - connected) * 1000,
              events_per_s=missed / (replayed - connected))
    return run, seq


async def bench_store(store: str, missed: int, runs: int, pad_bytes: int) -> list[Run]:
    with tempfile.TemporaryDirectory(prefix="ocos-resume-") as tmp:
        path = str(Path(tmp) / "history.sqlite3") if store == "sqlite" else None
        async with hub_process(store, path, missed) as base, aiohttp.ClientSession() as http:
            pad = "x" * pad_bytes
            seq = 0
            _, seq = await one_run(http, base, store, min(missed, 1000), pad, seq)  # warm-up
            results = []
            for _ in range(runs):
                run, seq = await one_run(http, base, store, missed, pad, seq)
                results.append(run)
            return results


def summary(results: list[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {"store": results[0].store, "missed": results[0].missed,
                           "runs": len(results)}
    for name in ("connect_ms", "ack_ms", "replayed_ms", "live_ms", "events_per_s"):
        values = [getattr(run, name) for run in results]
        out[name] = {"median": round(statistics.median(values), 1),
                     "min": round(min(values), 1), "max": round(max(values), 1)}
    return out


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    stores = ["memory", "sqlite"] if args.store == "both" else [args.store]
    return [summary(await bench_store(store, args.missed, args.runs, args.pad))
            for store in stores]


def cell(row: dict[str, Any], name: str) -> str:
    v = row[name]
    return f"{v['median']:.1f} [{v['min']:.1f}-{v['max']:.1f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("memory", "sqlite", "both"), default="both")
    parser.add_argument("--missed", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pad", type=int, default=200, help="padding bytes per event")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=900.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.store, args.path, args.missed, args.max_seconds)
        return
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"resume after {args.missed} missed events ({args.pad}-byte padding), "
          f"median [min-max] of {args.runs} runs, from the subscribe request:")
    for row in results:
        print(f"  {row['store']:<7} ack {cell(row, 'ack_ms')} ms   replayed "
              f"{cell(row, 'replayed_ms')} ms   live {cell(row, 'live_ms')} ms   "
              f"({row['events_per_s']['median']:,.0f} events/s replayed; "
              f"connect {row['connect_ms']['median']:.1f} ms)")


if __name__ == "__main__":
    main()
