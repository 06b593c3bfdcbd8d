"""Shared fixtures: real hubs on real sockets, real WebSocket clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from ocos_hub.app import HUB, create_app
from ocos_hub.config import merge, parse_config
from ocos_hub.hub import Hub
from tests.browser import browser, page, page_console, serve_static  # noqa: F401  (fixtures)
from tests.ticks import TicksPlugin

# Open access to the test topic unless a test says otherwise.
OPEN = {"access": {"anonymous": ["subscribe:*", "publish:*"]}}


class Client:
    """A real WebSocket client with the reads a test needs."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}
        self._next_id = 0

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type is not WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r}")
        return json.loads(msg.data)

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Send a request with a fresh id and return its reply (ack, pong or error)."""
        self._next_id += 1
        await self.ws.send_json({"type": type_, "id": self._next_id, **fields})
        reply = await self.recv()
        assert reply.get("id") == self._next_id, reply
        return reply

    async def events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        got = []
        while len(got) < count:
            frame = await self.recv(timeout)
            assert frame["type"] == "event", frame
            got.append(frame)
        return got

    async def nothing(self, wait: float = 0.2) -> None:
        """Assert that no frame arrives within `wait` seconds."""
        try:
            msg = await self.ws.receive(timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {msg.type!r} {msg.data!r}")

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; return the close code."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                return self.ws.close_code


class RunningHub:
    """A hub on a real socket, with an HTTP client and a WebSocket client factory."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    @property
    def app(self) -> web.Application:
        return self.http.server.app  # type: ignore[return-value]

    @property
    def hub(self) -> Hub:
        return self.app[HUB]

    @property
    def url(self) -> str:
        return str(self.http.make_url(self.hub.config.server.ws_path))

    async def connect(self, **kwargs: Any) -> Client:
        ws = await self.http.ws_connect(self.hub.config.server.ws_path, **kwargs)
        client = Client(ws)
        client.welcome = await client.recv()
        assert client.welcome["type"] == "welcome", client.welcome
        return client

    async def publish(self, *events: tuple[str, str, dict[str, Any]], **kw: Any) -> list[int]:
        body = {"events": [{"topic": t, "event": e, "data": d} for t, e, d in events]}
        resp = await self.http.post("/api/v1/events", json=body, **kw)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["offsets"]


StartHub = Callable[..., Awaitable[RunningHub]]


@pytest.fixture
async def start_hub(aiohttp_client: Any) -> AsyncIterator[StartHub]:
    """`await start_hub(config_overrides, plugins=[...])` -> RunningHub with the ticks topic."""

    async def start(
        overrides: dict[str, Any] | None = None,
        plugins: Sequence[tuple[str, object]] = (),
        enabled: Sequence[str] = ("ticks",),
    ) -> RunningHub:
        data = merge(merge({"plugins": {"enabled": list(enabled)}}, OPEN), overrides or {})
        config = parse_config(data, "test config")
        app = create_app(config, plugins=[("ticks", TicksPlugin()), *plugins])
        client = await aiohttp_client(TestServer(app))
        return RunningHub(client)

    yield start


@pytest.fixture
async def running(start_hub: StartHub) -> RunningHub:
    return await start_hub()
