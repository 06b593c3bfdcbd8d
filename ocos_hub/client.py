"""A Python client that never loses its place: reconnects with backoff and resumes.

    async with HubClient("ws://127.0.0.1:8765/ws") as hub:
        hub.subscribe("blocks", events=["block.new"])
        async for event in hub.events():
            print(event["offset"], event["data"])

For each topic it remembers the last offset and epoch it delivered and resubscribes with
`since` after a reconnect, so events arrive once each, in order, across disconnects. When
the hub could not recover (history trimmed, or a new epoch), `on_gap` is called.

`python -m ocos_hub.client URL TOPIC [TOPIC ...]` prints events as JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

from ocos_hub.protocol import PROTOCOL

log = logging.getLogger("ocos_hub.client")


class SubscriptionRefused(Exception):
    """The hub answered a subscribe with an error that retrying will not fix."""

    def __init__(self, topic: str, error: dict[str, Any]) -> None:
        super().__init__(f"{topic}: {error.get('code')}: {error.get('message')}")
        self.topic = topic
        self.error = error


@dataclass
class _Wanted:
    fields: dict[str, Any]
    offset: int | None = None
    epoch: str | None = None


@dataclass
class HubClient:
    """A resuming subscriber. `token` / `api_key` go in the handshake headers."""

    url: str
    token: str | None = None
    api_key: str | None = None
    min_backoff: float = 0.2
    max_backoff: float = 15.0
    on_gap: Callable[[str, dict[str, Any]], None] | None = None
    _wanted: dict[str, _Wanted] = field(default_factory=dict)
    _http: aiohttp.ClientSession | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _closed: bool = False
    reconnects: int = 0

    def subscribe(self, topic: str, **fields: Any) -> None:
        """Ask for a topic (`events`, `filter`, `where`, `rewind` as in the protocol)."""
        self._wanted[topic] = _Wanted(fields)

    def position(self, topic: str) -> tuple[int | None, str | None]:
        """The last offset and epoch delivered for a topic."""
        wanted = self._wanted[topic]
        return wanted.offset, wanted.epoch

    async def __aenter__(self) -> HubClient:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None,
                        ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        return headers

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        assert self._http is not None, "use `async with HubClient(...)`"
        ws = await self._http.ws_connect(self.url, protocols=(PROTOCOL,),
                                         headers=self._headers(), heartbeat=None)
        first = await ws.receive()
        if first.type is not aiohttp.WSMsgType.TEXT:  # dropped before it said hello
            await ws.close()
            raise ConnectionError(f"connection ended before the welcome ({first.type.name})")
        welcome = json.loads(first.data)
        if welcome.get("type") != "welcome":
            raise ConnectionError(f"expected a welcome frame, got {welcome!r}")
        for index, (topic, wanted) in enumerate(self._wanted.items()):
            request: dict[str, Any] = {"type": "subscribe", "id": f"sub-{index}", "topic": topic,
                                       **wanted.fields}
            if wanted.offset is not None:
                request.pop("rewind", None)
                request["since"] = {"offset": wanted.offset, "epoch": wanted.epoch}
            await ws.send_json(request)
        return ws

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event of the subscribed topics, once each and in order, across reconnects."""
        backoff = self.min_backoff
        while not self._closed:
            try:
                self._ws = await self._connect()
                async for msg in self._ws:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        break
                    frame = json.loads(msg.data)
                    kind = frame.get("type")
                    if kind == "event":
                        wanted = self._wanted.get(frame["topic"])
                        if wanted is None:
                            continue
                        if wanted.offset is not None and frame["offset"] <= wanted.offset:
                            continue  # already delivered before a reconnect
                        wanted.offset = frame["offset"]
                        yield frame
                    elif kind == "ack" and frame.get("op") == "subscribe":
                        backoff = self.min_backoff
                        self._acknowledged(frame)
                    elif kind == "error":
                        self._refused(frame)
            except (TimeoutError, aiohttp.ClientError, ConnectionError, OSError) as exc:
                log.info("connection to %s lost (%s)", self.url, exc)
            if self._closed:
                return
            self.reconnects += 1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(self.max_backoff, backoff * 2)

    def _acknowledged(self, ack: dict[str, Any]) -> None:
        wanted = self._wanted[ack["topic"]]
        if ack.get("recovered") is False:
            log.warning("topic %s: the hub could not recover every missed event", ack["topic"])
            if self.on_gap is not None:
                self.on_gap(ack["topic"], ack)
            if ack["epoch"] != wanted.epoch:
                wanted.offset = None  # a new lineage: its offsets start over
        if wanted.offset is None:
            wanted.offset = ack["offset"] if "rewind" not in wanted.fields else None
        wanted.epoch = ack["epoch"]

    def _refused(self, error: dict[str, Any]) -> None:
        request_id = str(error.get("id") or "")
        if request_id.startswith("sub-"):
            topic = list(self._wanted)[int(request_id[4:])]
            raise SubscriptionRefused(topic, error)
        log.warning("hub notice: %s: %s", error.get("code"), error.get("message"))


async def _tail(args: argparse.Namespace) -> None:
    async with HubClient(args.url, token=args.token, api_key=args.api_key) as client:
        for topic in args.topics:
            client.subscribe(topic, **({"rewind": args.rewind} if args.rewind else {}))
        async for event in client.events():
            print(json.dumps(event), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ocos-hub tail",
                                     description="print a hub's events as JSON lines")
    parser.add_argument("url", help="the hub's socket, e.g. ws://127.0.0.1:8765/ws")
    parser.add_argument("topics", nargs="+")
    parser.add_argument("--token")
    parser.add_argument("--api-key")
    parser.add_argument("--rewind", type=int, default=0, help="start with the last N events")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_tail(args))
    except SubscriptionRefused as exc:
        print(f"ocos-hub tail: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
