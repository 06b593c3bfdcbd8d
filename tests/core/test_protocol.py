"""Protocol v1 as a client sees it: every row of the spec this core covers."""

from __future__ import annotations

import re

import aiohttp

from tests.conftest import RunningHub, StartHub
from tests.ticks import tick

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_welcome_describes_the_connection(running: RunningHub) -> None:
    client = await running.connect()
    welcome = client.welcome
    assert welcome["protocol"] == "ocos.v1"
    assert welcome["server"].startswith("ocos-hub/")
    assert welcome["principal"] is None
    assert set(welcome["topics"]) == {"ticks", "private"}
    assert welcome["heartbeat"] == 30.0
    assert welcome["limits"]["max_message_bytes"] == 65536
    assert welcome["limits"]["max_subscriptions"] == 100
    assert isinstance(welcome["session"], str) and welcome["session"]


async def test_subprotocol_selected_when_offered(running: RunningHub) -> None:
    client = await running.connect(protocols=("ocos.v1",))
    assert client.ws.protocol == "ocos.v1"
    plain = await running.connect()
    assert plain.welcome["protocol"] == "ocos.v1"


async def test_unknown_subprotocol_refused_at_handshake(running: RunningHub) -> None:
    resp = await running.http.get("/ws", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "mqtt"})
    assert resp.status == 400
    assert (await resp.json())["code"] == "unsupported_protocol"


async def test_subscribe_ack_then_live_events_in_order(running: RunningHub) -> None:
    client = await running.connect()
    ack = await client.request("subscribe", topic="ticks")
    assert ack["op"] == "subscribe" and ack["topic"] == "ticks" and ack["offset"] == 0
    assert isinstance(ack["epoch"], str)
    assert await running.publish(tick(1), tick(2), tick(3)) == [1, 2, 3]
    events = await client.events(3)
    assert [e["offset"] for e in events] == [1, 2, 3]
    assert [e["data"]["n"] for e in events] == [1, 2, 3]
    assert all(e["topic"] == "ticks" and e["event"] == "tick" for e in events)
    assert all(TS.match(e["ts"]) for e in events)


async def test_ack_reports_latest_offset(running: RunningHub) -> None:
    await running.publish(tick(1), tick(2))
    client = await running.connect()
    ack = await client.request("subscribe", topic="ticks")
    assert ack["offset"] == 2
    await client.nothing()


async def test_request_ids_echoed_verbatim(running: RunningHub) -> None:
    client = await running.connect()
    for request_id in ("abc", 7, "x" * 64):
        await client.ws.send_json({"type": "ping", "id": request_id})
        assert (await client.recv())["id"] == request_id
    await client.ws.send_json({"type": "ping"})
    pong = await client.recv()
    assert pong["type"] == "pong" and pong["id"] is None and TS.match(pong["ts"])


async def test_bad_request_ids_refused(running: RunningHub) -> None:
    client = await running.connect()
    for bad in ("x" * 65, 1.5, True, [1]):
        await client.ws.send_json({"type": "ping", "id": bad})
        reply = await client.recv()
        assert reply["type"] == "error" and reply["code"] == "invalid_message"
        assert reply["id"] is None and reply["details"]["field"] == "id"


async def test_malformed_requests(running: RunningHub) -> None:
    client = await running.connect()
    await client.ws.send_str("{not json")
    assert (await client.recv())["code"] == "invalid_json"
    await client.ws.send_str("[1, 2]")
    assert (await client.recv())["code"] == "invalid_message"
    await client.ws.send_json({"id": 3})
    reply = await client.recv()
    assert reply["code"] == "invalid_message" and reply["id"] == 3
    reply = await client.request("teleport")
    assert reply["code"] == "unknown_type" and "subscribe" in reply["details"]["types"]
    reply = await client.request("subscribe", topic="ticks", colour="red")
    assert reply["code"] == "invalid_message" and reply["details"]["field"] == "colour"
    reply = await client.request("subscribe")
    assert reply["code"] == "invalid_message" and reply["details"]["field"] == "topic"


async def test_unknown_topic_and_subscription_rules(start_hub: StartHub) -> None:
    running = await start_hub({"server": {"max_subscriptions": 1}})
    client = await running.connect()
    assert (await client.request("subscribe", topic="nope"))["code"] == "unknown_topic"
    assert (await client.request("unsubscribe", topic="ticks"))["code"] == "not_subscribed"
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"
    again = await client.request("subscribe", topic="ticks")
    assert again["code"] == "already_subscribed"
    extra = await client.request("subscribe", topic="private")
    assert extra["code"] == "too_many_subscriptions"
    assert (await client.request("unsubscribe", topic="ticks"))["topic"] == "ticks"
    await running.publish(tick(1))
    await client.nothing()


async def test_events_kind_filter(running: RunningHub) -> None:
    client = await running.connect()
    bad = await client.request("subscribe", topic="ticks", events=["tick", "boom"])
    assert bad["code"] == "invalid_filter" and bad["details"]["unknown"] == ["boom"]
    await client.request("subscribe", topic="ticks", events=["tock"])
    await running.publish(tick(1), ("ticks", "tock", {"n": 2}), tick(3))
    [event] = await client.events(1)
    assert event["event"] == "tock" and event["offset"] == 2
    await client.nothing()


async def test_topic_filter_validated_and_applied(running: RunningHub) -> None:
    client = await running.connect()
    bad = await client.request("subscribe", topic="ticks", filter={"colour": "red"})
    assert bad["code"] == "invalid_filter" and bad["details"]["field"] == "colour"
    bad = await client.request("subscribe", topic="ticks", filter={"min_n": "many"})
    assert bad["code"] == "invalid_filter" and bad["details"]["field"] == "min_n"
    await client.request("subscribe", topic="ticks", filter={"min_n": 5})
    await running.publish(tick(1), tick(5), tick(2), tick(9))
    assert [e["data"]["n"] for e in await client.events(2)] == [5, 9]
    await client.nothing()


async def test_where_without_filters_plugin_is_invalid_filter(running: RunningHub) -> None:
    client = await running.connect()
    reply = await client.request("subscribe", topic="ticks", where={"data.n": {"gt": 1}})
    assert reply["code"] == "invalid_filter" and reply["details"]["field"] == "where"


async def test_since_and_rewind_are_exclusive(running: RunningHub) -> None:
    client = await running.connect()
    reply = await client.request("subscribe", topic="ticks", rewind=1,
                                 since={"offset": 0, "epoch": "e"})
    assert reply["code"] == "invalid_message"


async def test_publish_over_socket(running: RunningHub) -> None:
    producer = await running.connect()
    consumer = await running.connect()
    await consumer.request("subscribe", topic="ticks")
    ack = await producer.request("publish", topic="ticks", event="tick", data={"n": 4})
    assert ack == {"type": "ack", "id": ack["id"], "op": "publish", "topic": "ticks",
                   "offset": 1}
    [event] = await consumer.events(1)
    assert event["data"] == {"n": 4, "owner": "anyone"}
    bad = await producer.request("publish", topic="ticks", event="tick", data={"n": "four"})
    assert bad["code"] == "invalid_event"
    assert bad["details"][0]["loc"] == ["n"]
    unknown = await producer.request("publish", topic="ticks", event="boom", data={})
    assert unknown["code"] == "unknown_event"
    missing = await producer.request("publish", topic="nope", event="tick", data={})
    assert missing["code"] == "unknown_topic"


async def test_reply_precedes_events_it_causes(running: RunningHub) -> None:
    client = await running.connect()
    await client.request("subscribe", topic="ticks")
    await client.ws.send_json({"type": "publish", "id": "p", "topic": "ticks", "event": "tick",
                               "data": {"n": 1}})
    first, second = await client.recv(), await client.recv()
    assert first["type"] == "ack" and first["id"] == "p"
    assert second["type"] == "event" and second["offset"] == first["offset"]


async def test_binary_frame_closes_1003(running: RunningHub) -> None:
    client = await running.connect()
    await client.ws.send_bytes(b"\x00\x01")
    assert await client.closed() == 1003


async def test_oversize_frame_closes_1009(start_hub: StartHub) -> None:
    running = await start_hub({"server": {"max_message_bytes": 1024}})
    client = await running.connect()
    await client.ws.send_str('{"type":"ping","pad":"' + "x" * 2000 + '"}')
    assert await client.closed() == 1009


async def test_errors_never_leak_tracebacks(running: RunningHub) -> None:
    client = await running.connect()

    async def boom(session: object, request: object) -> None:
        raise RuntimeError("secret internals")

    op = running.hub.operations["ping"]
    original = type(op).__call__
    type(op).__call__ = boom  # type: ignore[method-assign]
    try:
        reply = await client.request("ping")
    finally:
        type(op).__call__ = original  # type: ignore[method-assign]
    assert reply["code"] == "internal_error"
    assert "secret" not in reply["message"] and "Traceback" not in str(reply)
    assert (await client.request("ping"))["type"] == "pong"


async def test_http_errors_are_json(running: RunningHub) -> None:
    resp = await running.http.get("/api/v1/nothing-here")
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"


async def test_aiohttp_client_offering_compression_still_gets_plain_frames(
    running: RunningHub,
) -> None:
    client = await running.connect(compress=15)
    await client.request("subscribe", topic="ticks")
    await running.publish(tick(1))
    assert (await client.events(1))[0]["data"]["n"] == 1
    assert isinstance(client.ws, aiohttp.ClientWebSocketResponse)
