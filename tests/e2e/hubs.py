"""A hub served on a fixed port that a test can stop and start again, as an operator
restarts a node: the same address, the same SQLite history file, a new process state."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ocos_hub.app import HUB, create_app
from ocos_hub.config import merge, parse_config
from ocos_hub.hub import Hub

TOPICS = ("blocks", "governance", "dao", "liquidity", "nft", "analytics")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_config(port: int, history: Path | None, **overrides: Any) -> dict[str, Any]:
    """The demo profile's plugins, faster: a block every half second, analytics every
    second; history in SQLite at `history` (memory when None)."""
    store = ({"store": "sqlite", "path": str(history)} if history is not None
             else {"store": "memory"})
    base = {
        "server": {"host": "127.0.0.1", "port": port, "shutdown_grace": 0.5},
        "plugins": {
            "enabled": [*TOPICS, "simulator", "replay", "filters", "history", "dashboard"],
            "simulator": {"seed": 11, "block_interval": 0.5},
            "analytics": {"window": 1.0},
            "replay": store,
            "dashboard": {"rewind": 1000},
        },
        "access": {"anonymous": [*(f"subscribe:{t}" for t in TOPICS), "publish:governance"]},
    }
    return merge(base, overrides)


class ServedHub:
    """`await start()`, `await stop()`, again and again on the same port and config."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.port = int(config["server"]["port"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.runner: web.AppRunner | None = None
        self.last_offsets: dict[str, int] = {}  # each topic's, when the hub last stopped

    @property
    def hub(self) -> Hub:
        assert self.runner is not None
        return self.runner.app[HUB]

    async def start(self) -> None:
        app = create_app(parse_config(self.config, "e2e config"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.runner = runner

    async def stop(self) -> None:
        """What SIGTERM does to `ocos-hub serve`: close every socket (1001), stop the
        sources, close the history file."""
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()
            hub = runner.app[HUB]
            self.last_offsets = {topic: (await hub.broker.position(topic)).offset
                                 for topic in hub.topics}

    async def publish(self, *events: tuple[str, str, dict[str, Any]]) -> list[int]:
        """Through the HTTP API, as a producer would."""
        body = {"events": [{"topic": t, "event": e, "data": d} for t, e, d in events]}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.url}/api/v1/events", json=body) as resp:
                assert resp.status == 200, await resp.text()
                return list((await resp.json())["offsets"])

    async def history(self, topic: str, after: int) -> list[int]:
        """Offsets of the retained events of `topic` after `after`, as the REST backfill
        pages through them."""
        offsets: list[int] = []
        async with aiohttp.ClientSession() as http:
            while True:
                url = f"{self.url}/api/v1/topics/{topic}/events?since={after}&limit=1000"
                async with http.get(url) as resp:
                    assert resp.status == 200, await resp.text()
                    page = await resp.json()
                offsets += [event["offset"] for event in page["events"]]
                if not page["events"] or page["next"] is None:
                    return offsets
                after = page["events"][-1]["offset"]
