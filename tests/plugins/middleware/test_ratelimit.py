"""The ratelimit plugin: floods are refused, then closed; handshakes and HTTP calls capped."""

from __future__ import annotations

from typing import Any

from ocos_middleware.ratelimit import RateLimiter
from tests.conftest import Client, RunningHub, StartHub
from tests.plugins.middleware.helpers import (
    ALICE_TOKEN,
    AUTH,
    BOB_TOKEN,
    eventually,
    frames_until_close,
    handshake,
)
from tests.ticks import tick

# One token per 1000 s: nothing refills while a test runs, so every count is exact.
SLOW = 0.001


def limits(**options: Any) -> dict[str, Any]:
    quiet = {"principal_messages_per_second": 0, "connections_per_second": 0,
             "max_connections_per_ip": 0, "max_connections_per_principal": 0,
             "http_requests_per_second": 0}
    return {"plugins": {"ratelimit": {**quiet, **options}}}


def limiter(running: RunningHub) -> RateLimiter:
    (found,) = [mw for mw in running.hub.middleware if isinstance(mw, RateLimiter)]
    return found


async def pings(client: Client, count: int) -> list[dict[str, Any]]:
    replies = []
    for _ in range(count):
        replies.append(await client.request("ping"))
    return replies


async def test_a_flood_is_refused_then_closed_4029(start_hub: StartHub) -> None:
    running = await start_hub(limits(messages_per_second=SLOW, burst=3, second_allowance=2),
                              enabled=["ticks", "ratelimit"])
    client = await running.connect()
    assert client.welcome["limits"]["rate"] == {"messages_per_second": SLOW, "burst": 3}
    for n in range(1, 11):
        await client.ws.send_json({"type": "ping", "id": n})
    frames = await frames_until_close(client)
    assert client.ws.close_code == 4029
    # the burst is served; then the second allowance of 2 refusals; the next refusal closes
    assert [(f["type"], f["id"]) for f in frames] == [
        ("pong", 1), ("pong", 2), ("pong", 3), ("error", 4), ("error", 5), ("error", 6)]
    for refusal in frames[3:]:
        assert refusal["code"] == "rate_limited"
        assert refusal["details"]["limit"] == "connection"
        assert 990 < refusal["details"]["retry_after"] <= 1000
    assert "closing" not in frames[3]["details"] and "closing" not in frames[4]["details"]
    assert frames[5]["details"]["closing"] is True


async def test_the_principal_bucket_spans_connections(start_hub: StartHub) -> None:
    running = await start_hub(
        limits(messages_per_second=100, burst=100, principal_messages_per_second=SLOW,
               principal_burst=4), plugins=[AUTH], enabled=["ticks", "password", "ratelimit"])
    alice = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    first, second = await running.connect(headers=alice), await running.connect(headers=alice)
    assert [r["type"] for r in await pings(first, 3)] == ["pong"] * 3
    replies = await pings(second, 2)
    assert replies[0]["type"] == "pong"
    assert (replies[1]["code"], replies[1]["details"]["limit"]) == ("rate_limited", "principal")
    bob = await running.connect(headers={"Authorization": f"Bearer {BOB_TOKEN}"})
    assert [r["type"] for r in await pings(bob, 4)] == ["pong"] * 4
    # anonymous connections count as one principal per address
    anonymous = [await running.connect(), await running.connect()]
    assert [r["type"] for r in await pings(anonymous[0], 4)] == ["pong"] * 4
    assert (await pings(anonymous[1], 1))[0]["code"] == "rate_limited"


async def test_per_topic_publish_limit(start_hub: StartHub) -> None:
    running = await start_hub(
        limits(topics={"ticks": {"publish_per_second": SLOW, "publish_burst": 2}}),
        enabled=["ticks", "ratelimit"])
    client = await running.connect()
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"
    results = []
    for n in range(3):
        results.append(await client.request("publish", topic="ticks", event="tick",
                                            data={"n": n}))
        if results[-1]["type"] == "ack":
            await client.events(1)
    assert [r["type"] for r in results] == ["ack", "ack", "error"]
    assert results[2]["code"] == "rate_limited"
    assert results[2]["details"]["limit"] == "topic"
    assert results[2]["details"]["topic"] == "ticks"
    other = await client.request("publish", topic="private", event="tick", data={"n": 1})
    assert other["type"] == "ack"  # other topics are not limited without a "*" entry


async def test_http_calls_over_the_rate_get_429_with_retry_after(start_hub: StartHub) -> None:
    running = await start_hub(limits(http_requests_per_second=SLOW, http_burst=2),
                              enabled=["ticks", "ratelimit"])
    await running.publish(tick(1))
    assert (await running.http.get("/api/v1/topics")).status == 200
    resp = await running.http.get("/api/v1/topics")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1000"
    body = await resp.json()
    assert body["code"] == "rate_limited" and 990 < body["details"]["retry_after"] <= 1000
    assert (await running.http.get("/healthz")).status == 200  # probes are exempt
    await running.connect()  # sockets have their own limits


async def test_handshake_rate_per_address(start_hub: StartHub) -> None:
    running = await start_hub(limits(connections_per_second=SLOW, connection_burst=2),
                              enabled=["ticks", "ratelimit"])
    await running.connect()
    await running.connect()
    status, body = await handshake(running)
    assert status == 429 and body is not None
    assert body["code"] == "rate_limited" and body["details"]["limit"] == "address"


async def test_connection_caps_per_address_and_principal(start_hub: StartHub) -> None:
    running = await start_hub(limits(max_connections_per_ip=3, max_connections_per_principal=1),
                              plugins=[AUTH], enabled=["ticks", "password", "ratelimit"])
    store = limiter(running).store
    ip_key = "conns:ip:127.0.0.1"
    alice = await running.connect(headers={"Authorization": f"Bearer {ALICE_TOKEN}"})
    status, body = await handshake(running, Authorization=f"Bearer {ALICE_TOKEN}")
    assert status == 429 and body == {
        "code": "too_many_connections", "message": "too many open connections for this principal",
        "details": {"limit": "principal", "max": 1}}
    assert await store.holders(ip_key) == 1  # the refused handshake released its address slot
    await running.connect(headers={"Authorization": f"Bearer {BOB_TOKEN}"})
    await running.connect()
    status, body = await handshake(running)
    assert status == 429 and body is not None
    assert body["details"] == {"limit": "address", "max": 3}
    await alice.ws.close()

    async def released() -> bool:
        return await store.holders(ip_key) == 2 and not await store.holders(
            "conns:principal:alice")

    await eventually(released)
    await running.connect(headers={"Authorization": f"Bearer {ALICE_TOKEN}"})
