"""The `history` and `topics` ops, and the REST backfill that answers like `history`."""

from __future__ import annotations

from typing import Any

import pytest

from ocos_hub.app import create_app
from ocos_hub.config import ConfigError, parse_config
from tests.conftest import RunningHub, StartHub
from tests.plugins.extensions.helpers import CLOSED, EXTENSIONS, TokenPlugin, bearer
from tests.ticks import TicksPlugin, tick

AUTH = [("token", TokenPlugin())]
WITH_AUTH = (*EXTENSIONS, "token")


@pytest.fixture
async def ext(start_hub: StartHub) -> RunningHub:
    running = await start_hub(enabled=EXTENSIONS)
    await running.publish(*(tick(n) for n in range(1, 11)))
    return running


def offsets(reply: dict[str, Any]) -> list[int]:
    return [e["offset"] for e in reply["events"]]


async def test_pages_forward_with_since(ext: RunningHub) -> None:
    client = await ext.connect()
    pages = []
    cursor: dict[str, Any] | None = {"since": 0}
    while cursor is not None:
        reply = await client.request("history", topic="ticks", limit=4, **cursor)
        assert reply["type"] == "ack" and reply["op"] == "history"
        pages.append(offsets(reply))
        cursor = reply["next"]
    assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    epoch = (await ext.hub.broker.position("ticks")).epoch
    assert reply["epoch"] == epoch
    assert (reply["first_offset"], reply["last_offset"]) == (1, 10)
    assert reply["events"][0] == {"type": "event", "topic": "ticks", "event": "tick",
                                  "offset": 9, "ts": reply["events"][0]["ts"],
                                  "data": {"n": 9, "owner": "anyone"}}


async def test_pages_back_from_the_newest(ext: RunningHub) -> None:
    client = await ext.connect()
    newest = await client.request("history", topic="ticks", limit=4)
    assert offsets(newest) == [7, 8, 9, 10] and newest["next"] == {"before": 7}
    older = await client.request("history", topic="ticks", limit=4, **newest["next"])
    assert offsets(older) == [3, 4, 5, 6] and older["next"] == {"before": 3}
    oldest = await client.request("history", topic="ticks", limit=4, **older["next"])
    assert offsets(oldest) == [1, 2] and oldest["next"] is None


async def test_caught_up_page_is_empty_with_no_cursor(ext: RunningHub) -> None:
    client = await ext.connect()
    reply = await client.request("history", topic="ticks", since=10)
    assert reply["events"] == [] and reply["next"] is None and reply["last_offset"] == 10


async def test_limit_has_a_default_and_a_ceiling(start_hub: StartHub) -> None:
    running = await start_hub({"plugins": {"history": {"default_limit": 2, "max_limit": 3}}},
                              enabled=EXTENSIONS)
    await running.publish(*(tick(n) for n in range(1, 11)))
    client = await running.connect()
    assert offsets(await client.request("history", topic="ticks", since=0)) == [1, 2]
    capped = await client.request("history", topic="ticks", since=0, limit=500)
    assert offsets(capped) == [1, 2, 3] and capped["next"] == {"since": 3}


def test_default_limit_above_max_limit_stops_the_start() -> None:
    config = parse_config({"plugins": {"enabled": ["ticks", "history"], "history": {
        "default_limit": 50, "max_limit": 10}}})
    with pytest.raises(ConfigError, match=r"\[plugins.history\] max_limit: .*default_limit"):
        create_app(config, plugins=[("ticks", TicksPlugin())])


@pytest.mark.parametrize(("fields", "field"), [
    ({"since": 1, "before": 5}, "before"),
    ({"limit": 0}, "limit"),
    ({"since": -1}, "since"),
    ({"before": 0}, "before"),
    ({"since": "1"}, "since"),
    ({"cursor": "x"}, "cursor"),
])
async def test_bad_history_requests(ext: RunningHub, fields: dict[str, Any], field: str) -> None:
    client = await ext.connect()
    reply = await client.request("history", topic="ticks", **fields)
    assert reply["type"] == "error" and reply["code"] == "invalid_message"
    assert reply["details"]["field"] == field


async def test_history_trimmed_shows_in_the_retained_range(start_hub: StartHub) -> None:
    running = await start_hub({"plugins": {"replay": {"max_events": 3}}}, enabled=EXTENSIONS)
    await running.publish(*(tick(n) for n in range(1, 11)))
    client = await running.connect()
    reply = await client.request("history", topic="ticks", since=2)
    assert reply["first_offset"] == 8 and offsets(reply) == [8, 9, 10]


# -- access -----------------------------------------------------------------------------


async def access_hub(start_hub: StartHub) -> RunningHub:
    running = await start_hub(CLOSED, plugins=AUTH, enabled=WITH_AUTH)
    await running.hub.publish_many([
        ("private", "tick", {"n": n, "owner": "alice" if n % 2 else "bob"}, None)
        for n in range(1, 9)
    ])
    await running.hub.publish_many([("ticks", "tick", {"n": 1}, None)])
    return running


async def test_history_needs_the_subscribe_scope(start_hub: StartHub) -> None:
    running = await access_hub(start_hub)
    anonymous = await running.connect()
    assert (await anonymous.request("history", topic="ticks"))["code"] == "unauthenticated"
    assert (await anonymous.request("history", topic="nope"))["code"] == "unknown_topic"
    alice = await running.connect(headers=bearer("alice", "subscribe:private"))
    assert (await alice.request("history", topic="ticks"))["code"] == "forbidden"


async def test_history_shows_only_events_the_principal_may_see(start_hub: StartHub) -> None:
    running = await start_hub(CLOSED, plugins=AUTH, enabled=WITH_AUTH)
    await running.hub.publish_many([
        ("private", "tick", {"n": n, "owner": "alice" if n <= 2 else "bob"}, None)
        for n in range(1, 9)
    ])
    alice = await running.connect(headers=bearer("alice", "subscribe:private"))
    first = await alice.request("history", topic="private", since=0, limit=4)
    assert offsets(first) == [1, 2] and first["next"] == {"since": 4}
    hidden = await alice.request("history", topic="private", limit=4, **first["next"])
    assert offsets(hidden) == [] and hidden["next"] is None  # paging runs over offsets
    bob = await running.connect(headers=bearer("bob", "subscribe:private"))
    assert offsets(await bob.request("history", topic="private", since=0)) == list(range(3, 9))


async def test_topics_lists_what_the_principal_may_subscribe_to(start_hub: StartHub) -> None:
    running = await access_hub(start_hub)
    anonymous = await running.connect()
    assert (await anonymous.request("topics"))["topics"] == []
    alice = await running.connect(headers=bearer("alice", "subscribe:private"))
    reply = await alice.request("topics")
    assert reply["type"] == "ack" and reply["op"] == "topics"
    [private] = reply["topics"]
    assert private["name"] == "private"
    assert private == running.hub.topics["private"].schema()
    assert private["events"]["tick"]["properties"]["n"]["type"] == "integer"
    admin = await running.connect(headers=bearer("root", "admin"))
    assert [t["name"] for t in (await admin.request("topics"))["topics"]] == ["ticks", "private"]
    extra = await admin.request("topics", topic="ticks")
    assert extra["code"] == "invalid_message" and extra["details"]["field"] == "topic"


# -- REST backfill: the same pages ------------------------------------------------------


async def rest(running: RunningHub, topic: str, headers: dict[str, str] | None = None,
               **params: Any) -> tuple[int, dict[str, Any]]:
    resp = await running.http.get(f"/api/v1/topics/{topic}/events", params=params,
                                  headers=headers or {})
    return resp.status, await resp.json()


def same_page(ack: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ack.items() if k not in ("type", "id", "op")}


@pytest.mark.parametrize("params", [
    {"since": 0, "limit": 4}, {"since": 4, "limit": 4}, {"since": 8, "limit": 4},
    {"since": 10}, {"limit": 3}, {"before": 7, "limit": 4}, {"before": 3}, {},
])
async def test_rest_backfill_answers_like_the_history_op(
    ext: RunningHub, params: dict[str, Any],
) -> None:
    client = await ext.connect()
    ack = await client.request("history", topic="ticks", **params)
    status, body = await rest(ext, "ticks", **params)
    assert status == 200
    assert body == same_page(ack)


async def test_rest_backfill_applies_visibility_and_scope(start_hub: StartHub) -> None:
    running = await access_hub(start_hub)
    alice_headers = bearer("alice", "subscribe:private")
    status, body = await rest(running, "private", alice_headers, since=0)
    assert status == 200 and offsets(body) == [1, 3, 5, 7]
    alice = await running.connect(headers=alice_headers)
    assert body == same_page(await alice.request("history", topic="private", since=0))
    status, body = await rest(running, "private")
    assert status == 401 and body["code"] == "unauthenticated"
    status, body = await rest(running, "ticks", alice_headers)
    assert status == 403 and body["code"] == "forbidden"


async def test_rest_backfill_refuses_bad_parameters(ext: RunningHub) -> None:
    status, body = await rest(ext, "ticks", since=1, before=4)
    assert status == 400 and body["code"] == "invalid_message"
    status, body = await rest(ext, "ticks", before=0)
    assert status == 400 and body["details"] == {"field": "before"}


async def test_following_cursors_reads_everything_once(ext: RunningHub) -> None:
    client = await ext.connect()
    forward: list[int] = []
    cursor: dict[str, Any] | None = {"since": 0}
    while cursor is not None:
        reply = await client.request("history", topic="ticks", limit=3, **cursor)
        forward += offsets(reply)
        cursor = reply["next"]
    backward: list[int] = []
    cursor = {}
    while cursor is not None:
        reply = await client.request("history", topic="ticks", limit=3, **cursor)
        backward = offsets(reply) + backward
        cursor = reply["next"]
    assert forward == backward == list(range(1, 11))
