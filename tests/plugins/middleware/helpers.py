"""A credential-checking plugin and raw-handshake helpers for the middleware tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import WSMsgType

from ocos_hub import AuthMethod, HubError, Principal, hookimpl
from ocos_hub.auth import API_KEY, TOKEN
from tests.conftest import Client, RunningHub

# Secrets the audit and logging tests look for in their files: none may ever appear.
ALICE_TOKEN = "alice-token-Zq8xV3"
BOB_TOKEN = "bob-token-Jt5wK9"
ALICE_PASSWORD = "alice-password-Hn2pR7"
API_KEY_VALUE = "ocos_key_Lm4sT6uW"
SECRETS = (ALICE_TOKEN, BOB_TOKEN, ALICE_PASSWORD, API_KEY_VALUE, "wrong-token-Xc1")

EVERYTHING = frozenset({"subscribe:*", "publish:*"})
PRINCIPALS = {
    ALICE_TOKEN: Principal("alice", "password", EVERYTHING),
    BOB_TOKEN: Principal("bob", "password", EVERYTHING),
    API_KEY_VALUE: Principal("producer", "password", EVERYTHING),
}
UPGRADE = {
    "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


class PasswordAuth(AuthMethod):
    """`{type: auth, method: password, user, password}` in band; bearer tokens and API keys
    at the handshake and over HTTP."""

    name = "password"

    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        if credentials.get("user") == "alice" and credentials.get("password") == ALICE_PASSWORD:
            return PRINCIPALS[ALICE_TOKEN]
        raise HubError("invalid_credentials", "wrong user or password")

    async def from_handshake(self, kind: str, value: str) -> Principal | None:
        if kind not in (TOKEN, API_KEY):
            return None
        principal = PRINCIPALS.get(value)
        if principal is None:
            raise HubError("invalid_credentials", "unknown credential")
        return principal


class PasswordPlugin:
    @hookimpl
    def ocos_auth_methods(self, config: object) -> list[AuthMethod]:
        return [PasswordAuth()]


AUTH = ("password", PasswordPlugin())


async def handshake(running: RunningHub, **headers: str) -> tuple[int, dict[str, Any] | None]:
    """A raw upgrade request: the status, and the JSON body when refused."""
    resp = await running.http.get(running.hub.config.server.ws_path,
                                  headers={**UPGRADE, **headers})
    try:
        if resp.status == 101:
            return 101, None
        return resp.status, json.loads(await resp.read())
    finally:
        resp.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until `check()` holds (server-side cleanup after a client closes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.01)


async def frames_until_close(client: Client) -> list[dict[str, Any]]:
    """Every text frame until the server closes the connection."""
    frames = []
    while True:
        msg = await client.ws.receive(timeout=5.0)
        if msg.type is not WSMsgType.TEXT:
            return frames
        frames.append(json.loads(msg.data))
