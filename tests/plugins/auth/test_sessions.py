"""Session tokens: presented every way, refused once revoked or expired, logout closes 4003."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ocos_auth.sessions import MemorySessionStore, SessionAuth, SessionRecord, session_id
from ocos_hub import hookimpl
from ocos_hub.config import ConfigError
from tests.conftest import RunningHub, StartHub
from tests.plugins.auth.helpers import CLOSED, SECRET, Wallet, hs256, refused, sign_in

WALLET = {"domain": "hub.example", "uri": "https://hub.example", "chain_id": "ocos:test",
          "scopes": ["subscribe:ticks"]}


async def session_hub(start_hub: StartHub, sessions: dict[str, Any] | None = None,
                      wallet: dict[str, Any] | None = None,
                      enabled: tuple[str, ...] = ("ticks", "sessions", "wallet"),
                      plugins: Any = ()) -> RunningHub:
    config: dict[str, Any] = {**CLOSED, "plugins": {"wallet": {**WALLET, **(wallet or {})}}}
    if sessions:
        config["plugins"]["sessions"] = sessions
    return await start_hub(config, enabled=list(enabled), plugins=plugins)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_session_token_presented_every_way(start_hub: StartHub) -> None:
    running = await session_hub(start_hub)
    wallet = Wallet()
    token = (await sign_in(running, wallet))["token"]
    by_header = await running.connect(headers=bearer(token))
    by_query = await running.connect(params={"token": token})
    for client in (by_header, by_query):
        assert client.welcome["principal"]["id"] == wallet.address
        assert client.welcome["principal"]["method"] == "session"
    in_band = await running.connect()
    ack = await in_band.request("auth", method="session", token=token)
    assert ack["principal"]["id"] == wallet.address
    assert (await in_band.request("subscribe", topic="ticks"))["type"] == "ack"


async def test_session_token_on_http_calls(start_hub: StartHub) -> None:
    running = await session_hub(start_hub)
    token = (await sign_in(running, Wallet()))["token"]
    resp = await running.http.get("/api/v1/topics/ticks/events", headers=bearer(token))
    assert resp.status == 200
    resp = await running.http.post("/api/v1/events", headers=bearer(token),
                                   json={"topic": "ticks", "event": "tick", "data": {"n": 1}})
    assert resp.status == 403 and (await resp.json())["code"] == "forbidden"


async def test_session_works_after_jwt_in_enabled_order(start_hub: StartHub) -> None:
    """The jwt plugin leaves tokens that are not JWT-shaped to the sessions plugin."""
    running = await start_hub(
        {**CLOSED, "plugins": {"jwt": {"secret": SECRET}, "wallet": WALLET}},
        enabled=["ticks", "jwt", "sessions", "wallet"])
    wallet = Wallet()
    token = (await sign_in(running, wallet))["token"]
    client = await running.connect(headers=bearer(token))
    assert client.welcome["principal"]["id"] == wallet.address
    jwt_client = await running.connect(headers=bearer(hs256()))
    assert jwt_client.welcome["principal"]["method"] == "jwt"


async def test_logout_closes_live_sockets_4003(start_hub: StartHub) -> None:
    running = await session_hub(start_hub)
    wallet = Wallet()
    token = (await sign_in(running, wallet))["token"]
    other = (await sign_in(running, wallet))["token"]
    doomed = [await running.connect(headers=bearer(token)), await running.connect()]
    assert (await doomed[1].request("auth", method="session", token=token))["type"] == "ack"
    survivor = await running.connect(headers=bearer(other))
    resp = await running.http.post("/auth/logout", headers=bearer(token))
    assert resp.status == 200
    assert await resp.json() == {"revoked": True, "connections_closed": 2}
    for client in doomed:
        assert await client.closed(timeout=1.0) == 4003
    assert (await survivor.request("ping"))["type"] == "pong"


async def test_revoked_session_refused(start_hub: StartHub) -> None:
    running = await session_hub(start_hub)
    token = (await sign_in(running, Wallet()))["token"]
    assert (await running.http.post("/auth/logout", params={"token": token})).status == 200
    body = await refused(running, headers=bearer(token))
    assert body["code"] == "invalid_credentials" and "revoked" in body["message"]
    client = await running.connect()
    reply = await client.request("auth", method="session", token=token)
    assert reply["code"] == "invalid_credentials" and "revoked" in reply["message"]
    again = await running.http.post("/auth/logout", headers=bearer(token))
    assert again.status == 401 and (await again.json())["code"] == "invalid_credentials"


async def test_logout_needs_a_session_token(start_hub: StartHub) -> None:
    running = await session_hub(start_hub)
    resp = await running.http.post("/auth/logout")
    assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated"
    resp = await running.http.post("/auth/logout", headers={"Authorization": "Basic eDp5"})
    assert resp.status == 401 and (await resp.json())["code"] == "invalid_credentials"
    resp = await running.http.post("/auth/logout", headers=bearer(hs256()))
    assert resp.status == 401 and "not a session token" in (await resp.json())["message"]
    resp = await running.http.post("/auth/logout", headers=bearer("A" * 43))
    assert resp.status == 401 and "unknown" in (await resp.json())["message"]


async def test_expired_session_refused(start_hub: StartHub) -> None:
    running = await session_hub(start_hub, wallet={"session_ttl": 0.3})
    token = (await sign_in(running, Wallet()))["token"]
    await asyncio.sleep(0.4)
    body = await refused(running, headers=bearer(token))
    assert "expired" in body["message"]


async def test_unknown_session_token_refused(start_hub: StartHub) -> None:
    running = await session_hub(start_hub)
    body = await refused(running, headers=bearer("B" * 43))
    assert body["code"] == "invalid_credentials" and "unknown" in body["message"]
    client = await running.connect()
    reply = await client.request("auth", method="session", token="short")
    assert reply["code"] == "invalid_credentials" and "not a session token" in reply["message"]


async def test_revocation_in_the_store_closes_sockets(start_hub: StartHub) -> None:
    """A session revoked behind this node's back (a shared store) still closes 4003."""
    running = await session_hub(start_hub, sessions={"revocation_check": 0.1})
    token = (await sign_in(running, Wallet()))["token"]
    client = await running.connect(headers=bearer(token))
    sessions = running.hub.auth_methods["session"]
    assert isinstance(sessions, SessionAuth)
    assert await sessions.store.revoke(session_id(token))
    assert await client.closed(timeout=1.0) == 4003


class RecordingStore(MemorySessionStore):
    """A stand-in for a shared store plugin (Redis): sees every session made."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[SessionRecord] = []

    async def create(self, sid: str, record: SessionRecord) -> None:
        self.created.append(record)
        await super().create(sid, record)


class StorePlugin:
    def __init__(self) -> None:
        self.store = RecordingStore()

    @hookimpl
    def ocos_session_store(self, config: Any, hub_config: Any) -> RecordingStore:
        return self.store


async def test_session_store_supplied_by_a_plugin(start_hub: StartHub) -> None:
    plugin = StorePlugin()
    running = await session_hub(start_hub, enabled=("ticks", "store", "sessions", "wallet"),
                                plugins=[("store", plugin)])
    wallet = Wallet()
    token = (await sign_in(running, wallet))["token"]
    assert [r.principal_id for r in plugin.store.created] == [wallet.address]
    client = await running.connect(headers=bearer(token))
    assert client.welcome["principal"]["id"] == wallet.address


async def test_a_store_that_is_not_a_session_store(start_hub: StartHub) -> None:
    class Wrong:
        @hookimpl
        def ocos_session_store(self, config: Any, hub_config: Any) -> object:
            return object()

    with pytest.raises(ConfigError, match=r"not an ocos_auth\.sessions\.SessionStore"):
        await session_hub(start_hub, enabled=("ticks", "wrong", "sessions"),
                          plugins=[("wrong", Wrong())])
