"""What the scale-out tests share: unique namespaces, private servers to kill, node helpers.

Every test works under its own Redis prefix or NATS stream, so tests run concurrently
against the shared servers; outage tests start a private server on a free port in a temp
dir, so killing it disturbs nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from ocos_hub.client import HubClient
from tests.conftest import Client, RunningHub

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"


def unique(kind: str) -> str:
    return f"test-{kind}-{secrets.token_hex(6)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(check: Any, what: str, attempts: int = 200, pause: float = 0.05) -> Any:
    """Poll an async `check` until it returns something truthy (a failure guard, not a
    timing assertion: the bound only stops a broken test from hanging)."""
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(pause)
    raise AssertionError(f"gave up waiting for {what}")


class PrivateServer:
    """A server process of one test, on its own port and directory, to kill and restart."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    async def reachable(self) -> bool:
        """Whether this very server answers (not another test's that took the port)."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            return await self.identify(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def identify(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       ) -> bool:
        raise NotImplementedError

    async def start(self) -> None:
        self.process = subprocess.Popen(self.command(), cwd=self.workdir,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def serving() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.command()[0]} exited ({self.process.returncode}); "
                                     f"port {self.port} taken?")
            return await self.reachable()

        await until(serving, f"{self.command()[0]} on port {self.port}")

    async def kill(self) -> None:
        """SIGKILL, as a crash or a lost host looks to the hub."""
        if self.process is not None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
            self.process = None


class PrivateRedis(PrivateServer):
    def __init__(self, workdir: Path, persistent: bool = True) -> None:
        super().__init__(workdir)
        self.persistent = persistent

    def command(self) -> list[str]:
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
                       else ["--appendonly", "no"])
        return [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1",
                "--port", str(self.port), "--dir", str(self.workdir), "--save", "",
                *persistence]

    async def identify(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       ) -> bool:
        writer.write(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$3\r\ndir\r\n")
        reply = await asyncio.wait_for(reader.read(4096), 5)
        return str(self.workdir).encode() in reply

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class PrivateNats(PrivateServer):
    def command(self) -> list[str]:
        return [shutil.which("nats-server") or "nats-server", "-a", "127.0.0.1",
                "-p", str(self.port), "-js", "-sd", str(self.workdir), "-n", self.name]

    @property
    def name(self) -> str:
        return f"test-{self.workdir.name}-{self.port}"

    async def identify(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       ) -> bool:
        info = await asyncio.wait_for(reader.readline(), 5)  # INFO {...} on connect
        return f'"server_name":"{self.name}"'.encode() in info

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


async def close_code(client: Client) -> int | None:
    """The code of the server's close frame (`Client.closed` reports the client's own view,
    1006 when the server drops the transport right after its close frame)."""
    while True:
        msg = await client.ws.receive(timeout=10)
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return client.ws.close_code


async def offsets(client: Client, count: int) -> list[int]:
    return [event["offset"] for event in await client.events(count)]


async def ready(node: RunningHub) -> int:
    return (await node.http.get("/readyz")).status


class Follower:
    """A resuming `HubClient` on the first node until `switch` is set, then on the second:
    the node it follows is stopped and it resumes on the other with `since`."""

    def __init__(self, urls: list[str], topic: str, count: int, switch: asyncio.Event) -> None:
        self.client = HubClient(urls[0], min_backoff=0.05, max_backoff=0.2)
        self.client.subscribe(topic)
        self.topic = topic
        self.got: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._run(urls[1], count, switch))

    @property
    def live(self) -> bool:
        """Whether its subscription was acknowledged (events from now on reach it)."""
        return self.client.position(self.topic)[1] is not None

    async def _run(self, second: str, count: int, switch: asyncio.Event) -> None:
        async def move() -> None:
            await switch.wait()
            self.client.url = second

        mover = asyncio.create_task(move())
        async with self.client:
            try:
                async for event in self.client.events():
                    self.got.append(event)
                    if len(self.got) == count:
                        break
            finally:
                mover.cancel()


async def raw_subscribe(url: str, topic: str, **fields: Any,
                        ) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse,
                                   dict[str, Any]]:
    """A plain socket subscription (for nodes outside the test's aiohttp client)."""
    http = aiohttp.ClientSession()
    ws = await http.ws_connect(url)
    await ws.receive_json()
    await ws.send_json({"type": "subscribe", "id": 1, "topic": topic, **fields})
    return http, ws, await ws.receive_json()
