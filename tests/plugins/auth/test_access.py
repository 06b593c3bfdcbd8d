"""Access as clients meet it: required auth, anonymous grants, scopes on every kind of
request, token refresh, and credentials expiring mid-connection."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import StrictStr

from ocos_auth.apikey import key_hash
from ocos_hub import Operation, Request, hookimpl
from tests.conftest import Client, RunningHub, StartHub
from tests.plugins.auth.helpers import SECRET, hs256, refused
from tests.ticks import tick

KEYS = {"reader": "reader-key", "writer": "writer-key"}


class EchoRequest(Request):
    text: StrictStr


class Echo(Operation):
    """An extension op guarded by a scope, as a history or admin op would be."""

    name = "echo"
    request_model: ClassVar[type[Request]] = EchoRequest

    def required_scope(self, request: Request) -> str:
        return "echo:ticks"

    async def __call__(self, session: Any, request: EchoRequest) -> dict[str, Any]:
        return {"text": request.text}


class EchoPlugin:
    @hookimpl
    def ocos_operations(self, config: Any) -> list[Operation]:
        return [Echo()]


async def access_hub(start_hub: StartHub, access: dict[str, Any] | None = None) -> RunningHub:
    keys = [
        {"label": "reader", "hash": key_hash(KEYS["reader"]), "scopes": ["subscribe:ticks"]},
        {"label": "writer", "hash": key_hash(KEYS["writer"]),
         "scopes": ["subscribe:*", "publish:*", "echo:*"]},
    ]
    return await start_hub(
        {"access": {"anonymous": [], **(access or {})},
         "plugins": {"jwt": {"secret": SECRET}, "apikey": {"keys": keys}}},
        plugins=[("echo", EchoPlugin())], enabled=["ticks", "echo", "jwt", "apikey"])


async def test_require_auth_refuses_anonymous_handshakes(start_hub: StartHub) -> None:
    running = await access_hub(start_hub, {"require_auth": True})
    body = await refused(running)
    assert body["code"] == "unauthenticated" and "requires credentials" in body["message"]
    resp = await running.http.get("/api/v1/topics/ticks/events")
    assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated"
    client = await running.connect(headers={"X-API-Key": KEYS["reader"]})
    assert client.welcome["principal"]["id"] == "apikey:reader"
    jwt_client = await running.connect(params={"token": hs256()})
    assert jwt_client.welcome["principal"]["id"] == "alice"


async def test_bad_credentials_never_downgrade_to_anonymous(start_hub: StartHub) -> None:
    running = await access_hub(start_hub, {"anonymous": ["subscribe:*"]})
    for headers in ({"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
                    {"X-API-Key": "guess"}, {"Authorization": f"Bearer {hs256(secret='n' * 40)}"}):
        body = await refused(running, headers=headers)
        assert body["code"] == "invalid_credentials", (headers, body)
    body = await refused(running, query="?api_key=guess")
    assert body["code"] == "invalid_credentials"


async def test_anonymous_grants(start_hub: StartHub) -> None:
    running = await access_hub(start_hub, {"anonymous": ["subscribe:ticks"]})
    client = await running.connect()
    assert client.welcome["principal"] is None and client.welcome["topics"] == ["ticks"]
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"
    for reply in (
        await client.request("subscribe", topic="private"),
        await client.request("publish", topic="ticks", event="tick", data={"n": 1}),
        await client.request("echo", text="hi"),
    ):
        assert reply["code"] == "unauthenticated", reply
    closed = await access_hub(start_hub)
    nobody = await closed.connect()
    assert nobody.welcome["topics"] == []
    assert (await nobody.request("subscribe", topic="ticks"))["code"] == "unauthenticated"


async def test_scopes_enforced_on_subscribe_publish_and_extension_ops(
    start_hub: StartHub,
) -> None:
    running = await access_hub(start_hub)
    reader = await running.connect(headers={"X-API-Key": KEYS["reader"]})
    assert (await reader.request("subscribe", topic="ticks"))["type"] == "ack"
    for reply in (
        await reader.request("subscribe", topic="private"),
        await reader.request("publish", topic="ticks", event="tick", data={"n": 1}),
        await reader.request("echo", text="hi"),
    ):
        assert reply["code"] == "forbidden" and "apikey:reader" in reply["message"], reply
    writer = await running.connect(headers={"X-API-Key": KEYS["writer"]})
    assert (await writer.request("subscribe", topic="private"))["type"] == "ack"
    assert (await writer.request("publish", topic="ticks", event="tick",
                                 data={"n": 1}))["type"] == "ack"
    assert (await writer.request("echo", text="hi"))["text"] == "hi"
    [event] = await reader.events(1)
    assert event["data"]["n"] == 1
    resp = await running.http.post("/api/v1/events", headers={"X-API-Key": KEYS["reader"]},
                                   json={"topic": "ticks", "event": "tick", "data": {"n": 2}})
    assert resp.status == 403
    await running.publish(tick(3), headers={"X-API-Key": KEYS["writer"]})


async def _auth(client: Client, token: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Send an `auth` request; return its reply and the notices that came with it."""
    await client.ws.send_json({"type": "auth", "id": "re", "method": "jwt", "token": token})
    notices = []
    while True:
        frame = await client.recv()
        if frame.get("id") == "re":
            return frame, notices
        notices.append(frame)


async def test_token_refresh_keeps_allowed_subscriptions_and_drops_others(
    start_hub: StartHub,
) -> None:
    running = await access_hub(start_hub)
    both = hs256(scope="subscribe:ticks subscribe:private")
    client = await running.connect(headers={"Authorization": f"Bearer {both}"})
    await client.request("subscribe", topic="ticks")
    await client.request("subscribe", topic="private")

    same, notices = await _auth(client, hs256(scope="subscribe:ticks subscribe:private"))
    assert same["type"] == "ack" and notices == []

    narrower, notices = await _auth(client, hs256(scope="subscribe:ticks"))
    assert narrower["type"] == "ack"
    assert narrower["principal"]["scopes"] == ["subscribe:ticks"]
    assert [(n["type"], n["id"], n["code"], n["details"]) for n in notices] == [
        ("error", None, "forbidden", {"topic": "private"})]

    await running.publish(("private", "tick", {"n": 1, "owner": "alice"}), tick(2),
                          headers={"X-API-Key": KEYS["writer"]})
    [event] = await client.events(1)
    assert event["topic"] == "ticks" and event["data"]["n"] == 2
    await client.nothing()
    assert (await client.request("unsubscribe", topic="private"))["code"] == "not_subscribed"

    refused_reply, _ = await _auth(client, hs256(exp=int(time.time()) - 3600))
    assert refused_reply["code"] == "invalid_credentials"
    assert (await client.request("unsubscribe", topic="ticks"))["type"] == "ack"


async def test_expiry_notice_then_close_4001_unless_refreshed(start_hub: StartHub) -> None:
    running = await access_hub(start_hub)
    short = hs256(exp=time.time() + 1.5)
    lapsing = await running.connect(headers={"Authorization": f"Bearer {short}"})
    refreshing = await running.connect(headers={"Authorization": f"Bearer {short}"})
    expires_at = lapsing.welcome["principal"]["expires_at"]
    for client in (lapsing, refreshing):
        notice = await client.recv(timeout=2.0)
        assert notice == {"type": "error", "id": None, "code": "token_expired",
                          "message": notice["message"], "details": {"expires_at": expires_at}}
    reply, _ = await _auth(refreshing, hs256())
    assert reply["type"] == "ack"
    await refreshing.request("subscribe", topic="ticks")
    assert await lapsing.closed(timeout=2.0) == 4001
    await refreshing.nothing(0.3)
    assert (await refreshing.request("ping"))["type"] == "pong"
    await running.publish(tick(1), headers={"X-API-Key": KEYS["writer"]})
    assert (await refreshing.events(1))[0]["data"]["n"] == 1
