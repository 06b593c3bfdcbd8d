"""The HTTP companion API: publish, topics, backfill, health; errors as JSON bodies."""

from __future__ import annotations

from tests.conftest import RunningHub, StartHub
from tests.ticks import tick


async def test_publish_single_and_batch(running: RunningHub) -> None:
    client = await running.connect()
    await client.request("subscribe", topic="ticks")
    single = await running.http.post("/api/v1/events", json={
        "topic": "ticks", "event": "tick", "data": {"n": 1}})
    assert single.status == 200 and await single.json() == {"offsets": [1]}
    assert await running.publish(tick(2), tick(3)) == [2, 3]
    assert [e["offset"] for e in await client.events(3)] == [1, 2, 3]


async def test_invalid_event_is_422_with_details_and_publishes_nothing(
    running: RunningHub,
) -> None:
    resp = await running.http.post("/api/v1/events", json={"events": [
        {"topic": "ticks", "event": "tick", "data": {"n": 1}},
        {"topic": "ticks", "event": "tick", "data": {"n": "two"}},
    ]})
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "invalid_event"
    assert body["details"]["index"] == 1
    assert body["details"]["errors"][0]["loc"] == ["n"]
    assert (await running.hub.broker.position("ticks")).offset == 0


async def test_unknown_topic_is_404_unknown_kind_422(running: RunningHub) -> None:
    resp = await running.http.post("/api/v1/events", json={
        "topic": "nope", "event": "tick", "data": {}})
    assert resp.status == 404 and (await resp.json())["code"] == "unknown_topic"
    resp = await running.http.post("/api/v1/events", json={
        "topic": "ticks", "event": "boom", "data": {}})
    assert resp.status == 422 and (await resp.json())["code"] == "unknown_event"


async def test_malformed_bodies(running: RunningHub) -> None:
    resp = await running.http.post("/api/v1/events", data=b"{oops")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_json"
    resp = await running.http.post("/api/v1/events", json={"topic": "ticks"})
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_message"
    resp = await running.http.post("/api/v1/events", json={"events": []})
    assert resp.status == 400


async def test_batch_limit(start_hub: StartHub) -> None:
    running = await start_hub({"publish": {"max_batch": 2}})
    resp = await running.http.post("/api/v1/events", json={"events": [
        {"topic": "ticks", "event": "tick", "data": {"n": i}} for i in range(3)]})
    assert resp.status == 413 and (await resp.json())["details"] == {"max_batch": 2}


async def test_repeated_key_returns_first_offset_and_publishes_nothing(
    running: RunningHub,
) -> None:
    client = await running.connect()
    await client.request("subscribe", topic="ticks")
    body = {"topic": "ticks", "event": "tick", "data": {"n": 1}, "key": "tx-1"}
    first = await (await running.http.post("/api/v1/events", json=body)).json()
    again = await (await running.http.post("/api/v1/events", json=body)).json()
    assert first == again == {"offsets": [1]}
    batch = await running.http.post("/api/v1/events", json={"events": [
        {**body, "key": "tx-2"}, {**body, "key": "tx-2"}, {**body, "key": "tx-1"}]})
    assert (await batch.json()) == {"offsets": [2, 2, 1]}
    assert [e["offset"] for e in await client.events(2)] == [1, 2]
    await client.nothing()
    ws_ack = await client.request("publish", topic="ticks", event="tick", data={"n": 5},
                                  key="tx-2")
    assert ws_ack["offset"] == 2


async def test_dedup_window_expires(start_hub: StartHub) -> None:
    running = await start_hub({"publish": {"dedup_window": 0}})
    body = {"topic": "ticks", "event": "tick", "data": {"n": 1}, "key": "k"}
    offsets = [(await (await running.http.post("/api/v1/events", json=body)).json())["offsets"]
               for _ in range(2)]
    assert offsets == [[1], [2]]


async def test_python_api_publish(running: RunningHub) -> None:
    client = await running.connect()
    await client.request("subscribe", topic="ticks")
    assert await running.hub.publish("ticks", "tick", {"n": 7}) == 1
    assert await running.hub.publish("ticks", "tick", {"n": 8}, key="a") == 2
    assert await running.hub.publish("ticks", "tick", {"n": 9}, key="a") == 2
    assert [e["data"]["n"] for e in await client.events(2)] == [7, 8]


async def test_publish_needs_the_publish_scope(start_hub: StartHub) -> None:
    running = await start_hub({"access": {"anonymous": ["subscribe:ticks"]}})
    resp = await running.http.post("/api/v1/events", json={
        "topic": "ticks", "event": "tick", "data": {"n": 1}})
    assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated"
    client = await running.connect()
    reply = await client.request("publish", topic="ticks", event="tick", data={"n": 1})
    assert reply["code"] == "unauthenticated"
    assert (await client.request("subscribe", topic="private"))["code"] == "unauthenticated"


async def test_credentials_nobody_accepts_are_refused(running: RunningHub) -> None:
    resp = await running.http.post("/api/v1/events", headers={"Authorization": "Bearer xyz"},
                                   json={"topic": "ticks", "event": "tick", "data": {"n": 1}})
    assert resp.status == 401 and (await resp.json())["code"] == "invalid_credentials"
    resp = await running.http.get("/ws?api_key=abc", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 401 and (await resp.json())["code"] == "invalid_credentials"


async def test_require_auth_refuses_anonymous_handshake(start_hub: StartHub) -> None:
    running = await start_hub({"access": {"require_auth": True}})
    resp = await running.http.get("/ws", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated"


async def test_topics_endpoint_lists_schemas(running: RunningHub) -> None:
    body = await (await running.http.get("/api/v1/topics")).json()
    ticks = next(t for t in body["topics"] if t["name"] == "ticks")
    assert set(ticks["events"]) == {"tick", "tock"}
    assert ticks["events"]["tick"]["properties"]["n"]["type"] == "integer"
    assert "min_n" in ticks["filter"]["properties"]
    assert ticks["examples"]["tick"] == {"n": 1}


async def test_backfill(running: RunningHub) -> None:
    await running.publish(*(tick(n) for n in range(1, 6)))
    resp = await running.http.get("/api/v1/topics/ticks/events?since=2&limit=2")
    body = await resp.json()
    assert [e["offset"] for e in body["events"]] == [3, 4]
    assert body["epoch"] == (await running.hub.broker.position("ticks")).epoch
    assert body["events"][0] == {"type": "event", "topic": "ticks", "event": "tick",
                                 "offset": 3, "ts": body["events"][0]["ts"],
                                 "data": {"n": 3, "owner": "anyone"}}
    bad = await running.http.get("/api/v1/topics/ticks/events?since=minus")
    assert bad.status == 400 and (await bad.json())["details"] == {"field": "since"}


async def test_health_and_readiness(running: RunningHub) -> None:
    assert (await running.http.get("/healthz")).status == 200
    ready = await running.http.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
