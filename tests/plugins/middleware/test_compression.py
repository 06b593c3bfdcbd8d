"""permessage-deflate: compressed clients receive exactly what uncompressed ones do."""

from __future__ import annotations

import json

from ocos_hub.app import HUB
from tests.conftest import StartHub
from tests.ticks import tick


async def test_compressed_and_plain_clients_receive_the_same_events(
    start_hub: StartHub,
) -> None:
    running = await start_hub({"plugins": {"compression": {"level": 6, "min_size": 64}}},
                              enabled=["ticks", "compression"])
    zipped = await running.connect(compress=15)
    plain = await running.connect(compress=0)
    assert zipped.ws.compress == 15 and plain.ws.compress == 0
    for client in (zipped, plain):
        await client.request("subscribe", topic="ticks")
    long_owner = "w" * 500  # over min_size: sent compressed
    await running.publish(*(tick(n, owner=long_owner if n % 2 else "z") for n in range(40)))
    got_zipped = await zipped.events(40)
    got_plain = await plain.events(40)
    assert got_zipped == got_plain
    assert [e["data"]["n"] for e in got_zipped] == list(range(40))
    # the shared compressed frame is built once per event, not once per receiver
    history = await running.app[HUB].broker.read("ticks", 0, 100)
    big = [e for e in history.events if e.data["owner"] == long_owner]
    assert all(e._deflated is not None and len(e._deflated[15]) < len(e.frame) // 4
               for e in big)


async def test_server_answers_with_no_context_takeover(start_hub: StartHub) -> None:
    running = await start_hub({}, enabled=["ticks", "compression"])
    resp = await running.http.get("/ws", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Extensions": "permessage-deflate"})
    assert resp.status == 101
    extensions = resp.headers["Sec-WebSocket-Extensions"]
    assert "permessage-deflate" in extensions and "server_no_context_takeover" in extensions
    resp.close()


async def test_without_the_plugin_nothing_is_negotiated(start_hub: StartHub) -> None:
    running = await start_hub()
    client = await running.connect(compress=15)
    assert client.ws.compress == 0
    await client.request("subscribe", topic="ticks")
    await running.publish(tick(1, owner="x" * 500))
    assert json.loads(json.dumps((await client.events(1))[0]))["data"]["n"] == 1
