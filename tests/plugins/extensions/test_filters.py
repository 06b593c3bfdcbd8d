"""`where` filters: every operator, exact decimals, refusals, and their place in delivery."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from ocos_extensions.filters import FiltersConfig, compile_where
from ocos_hub import Event, HubError
from tests.conftest import RunningHub, StartHub
from tests.ticks import tick

BIG = 2**64
U256_MAX = 2**256 - 1


def event(kind: str = "tick", offset: int = 7, ts: str = "2024-05-01T12:00:00.000Z",
          topic: str = "ticks", **data: Any) -> Event:
    return Event(topic, kind, offset, ts, data)


def keeps(where: dict[str, Any], ev: Event) -> bool:
    return compile_where(where)(ev)


# (where, event, kept)
CASES: list[tuple[dict[str, Any], Event, bool]] = [
    # eq / ne: numbers and decimal strings by value, bools and null apart
    ({"data.n": {"eq": 5}}, event(n=5), True),
    ({"data.n": {"eq": 5}}, event(n=6), False),
    ({"data.n": {"eq": 5}}, event(n="5.00"), True),
    ({"data.n": {"eq": "5"}}, event(n=5.0), True),
    ({"data.n": {"eq": 0.1}}, event(n="0.1"), True),
    ({"data.n": {"eq": 1}}, event(n=True), False),
    ({"data.flag": {"eq": True}}, event(flag=True), True),
    ({"data.flag": {"eq": True}}, event(flag=1), False),
    ({"data.x": {"eq": None}}, event(x=None), True),
    ({"data.x": {"eq": None}}, event(), False),
    ({"data.owner": {"eq": "alice"}}, event(owner="alice"), True),
    ({"data.owner": {"eq": "alice"}}, event(owner="alicia"), False),
    ({"data.addr": {"eq": "0x10"}}, event(addr="0x10"), True),
    ({"data.n": {"ne": 5}}, event(n=5), False),
    ({"data.n": {"ne": 5}}, event(n="6"), True),
    ({"data.n": {"ne": 5}}, event(), True),
    # in / nin
    ({"data.token": {"in": ["OCOS", "USDT"]}}, event(token="USDT"), True),
    ({"data.token": {"in": ["OCOS", "USDT"]}}, event(token="ETH"), False),
    ({"data.n": {"in": [1, "2", 3.5]}}, event(n=2), True),
    ({"data.n": {"in": [1, "2", 3.5]}}, event(n="3.50"), True),
    ({"data.n": {"in": [1, "2", 3.5]}}, event(n=4), False),
    ({"data.n": {"in": [1, None]}}, event(n=None), True),
    ({"data.n": {"in": [1]}}, event(n=True), False),
    ({"data.n": {"in": []}}, event(n=1), False),
    ({"data.token": {"nin": ["OCOS"]}}, event(token="USDT"), True),
    ({"data.token": {"nin": ["OCOS"]}}, event(token="OCOS"), False),
    ({"data.token": {"nin": ["OCOS"]}}, event(), True),
    # gt / gte / lt / lte: exact numbers; strings order as strings when the bound is no number
    ({"data.n": {"gt": 5}}, event(n=6), True),
    ({"data.n": {"gt": 5}}, event(n=5), False),
    ({"data.n": {"gte": 5}}, event(n="5.0"), True),
    ({"data.n": {"lt": "0.1"}}, event(n=0.1), False),
    ({"data.n": {"lte": "0.1"}}, event(n=0.1), True),
    ({"data.n": {"lt": 0}}, event(n="-0.000001"), True),
    ({"data.n": {"gt": "1e3"}}, event(n=1001), True),
    ({"data.n": {"gt": 1}}, event(n="abc"), False),
    ({"data.n": {"gt": 1}}, event(n=True), False),
    ({"data.n": {"gt": 1}}, event(), False),
    ({"ts": {"gte": "2024-05-01T00:00:00.000Z"}}, event(), True),
    ({"ts": {"lt": "2024-05-01T00:00:00.000Z"}}, event(), False),
    ({"offset": {"gt": 6, "lte": 7}}, event(offset=7), True),
    ({"offset": {"gt": 6, "lte": 7}}, event(offset=8), False),
    # 256-bit amounts as decimal strings: exact, where floats would call them equal
    ({"data.amount": {"gt": str(BIG)}}, event(amount=str(BIG + 1)), True),
    ({"data.amount": {"gt": str(BIG)}}, event(amount=str(BIG)), False),
    ({"data.amount": {"gte": str(BIG)}}, event(amount=str(BIG)), True),
    ({"data.amount": {"lt": str(U256_MAX)}}, event(amount=str(U256_MAX - 1)), True),
    ({"data.amount": {"lt": str(U256_MAX)}}, event(amount=str(U256_MAX)), False),
    ({"data.amount": {"lte": BIG + 1}}, event(amount=str(BIG + 2)), False),
    ({"data.amount": {"eq": str(2**200 + 1)}}, event(amount=2**200 + 1), True),
    ({"data.amount": {"eq": str(2**200 + 1)}}, event(amount=str(2**200)), False),
    ({"data.amount": {"in": [str(U256_MAX)]}}, event(amount=f"{U256_MAX}.000"), True),
    ({"data.amount": {"nin": [str(U256_MAX)]}}, event(amount=str(U256_MAX - 1)), True),
    ({"data.amount": {"gt": "0.3"}}, event(amount=str(10**77) + ".000000000000000001"), True),
    ({"data.amount": {"gt": str(10**90 - 1)}}, event(amount=str(10**90)), True),
    ({"data.amount": {"eq": 10**5000}}, event(amount="1" + "0" * 5000), True),
    ({"data.n": {"eq": 123}}, event(n="\u0661\u0662\u0663"), False),  # Arabic-Indic digits
    ({"data.n": {"gte": 0}}, event(n="\u00b2"), False),  # a superscript two is no number
    ({"data.n": {"gt": 5}}, event(n="1e999999999999999999"), True),
    ({"data.n": {"gt": 5}}, event(n="1e99999999999999999999999999999"), False),  # too far
    ({"data.n": {"ne": 5}}, event(n="1e99999999999999999999999999999"), True),
    # exists, prefix, nested paths, list indexes, the event's own fields
    ({"data.memo": {"exists": True}}, event(memo=None), True),
    ({"data.memo": {"exists": True}}, event(), False),
    ({"data.memo": {"exists": False}}, event(), True),
    ({"data.pool.token_a": {"eq": "OCOS"}}, event(pool={"token_a": "OCOS"}), True),
    ({"data.pool.token_a": {"eq": "OCOS"}}, event(pool="OCOS"), False),
    ({"data.pool.token_a.x": {"exists": False}}, event(pool={"token_a": "OCOS"}), True),
    ({"data.path.1": {"eq": "USDT"}}, event(path=["OCOS", "USDT"]), True),
    ({"data.path.2": {"exists": True}}, event(path=["OCOS", "USDT"]), False),
    ({"data.path.\u00b2": {"exists": True}}, event(path=["OCOS", "USDT", "ETH"]), False),
    ({"data.address": {"prefix": "ocos1"}}, event(address="ocos1qxyz"), True),
    ({"data.address": {"prefix": "ocos1"}}, event(address="eth0x"), False),
    ({"data.address": {"prefix": "1"}}, event(address=123), False),
    ({"event": {"eq": "tock"}}, event("tock"), True),
    ({"event": {"prefix": "ti"}}, event("tock"), False),
    ({"topic": {"eq": "ticks"}}, event(), True),
    # every condition must hold
    ({"event": {"eq": "tick"}, "data.n": {"gte": 3}}, event(n=3), True),
    ({"event": {"eq": "tick"}, "data.n": {"gte": 3}}, event("tock", n=3), False),
    ({"event": {"eq": "tick"}, "data.n": {"gte": 3}, "offset": {"lt": 7}}, event(n=4), False),
    ({}, event(), True),
]


@pytest.mark.parametrize(("where", "ev", "kept"), CASES)
def test_where_operators(where: dict[str, Any], ev: Event, kept: bool) -> None:
    assert keeps(where, ev) is kept


# (where, field named in details, words in the message)
INVALID: list[tuple[Any, str, str]] = [
    ({"amount_in": {"eq": 1}}, "where.amount_in", "unknown path root 'amount_in'"),
    ({"data": {"exists": True}}, "where.data", "name a field"),
    ({"event.kind": {"eq": "x"}}, "where.event.kind", "no fields"),
    ({"data..n": {"eq": 1}}, "where.data..n", "none empty"),
    ({"data.n": {"gtx": 1}}, "where.data.n", "unknown operator 'gtx'"),
    ({"data.n": 5}, "where.data.n", "a condition is an object"),
    ({"data.n": {}}, "where.data.n", "a condition is an object"),
    ({"data.n": {"eq": {"a": 1}}}, "where.data.n", "'eq' takes"),
    ({"data.n": {"ne": [1]}}, "where.data.n", "'ne' takes"),
    ({"data.n": {"in": 5}}, "where.data.n", "'in' takes a list"),
    ({"data.n": {"nin": [[1]]}}, "where.data.n", "'nin' takes"),
    ({"data.n": {"gt": True}}, "where.data.n", "'gt' takes a number or a string"),
    ({"data.n": {"gte": None}}, "where.data.n", "'gte' takes"),
    ({"data.n": {"lt": [1]}}, "where.data.n", "'lt' takes"),
    ({"data.n": {"lte": float("nan")}}, "where.data.n", "finite"),
    ({"data.n": {"eq": float("inf")}}, "where.data.n", "'eq' takes"),
    ({"data.n": {"exists": "yes"}}, "where.data.n", "'exists' takes true or false"),
    ({"data.n": {"gt": "1e99999999999999999999999999999"}}, "where.data.n", "out of range"),
    ({"data.n": {"prefix": 5}}, "where.data.n", "'prefix' takes a string"),
    ({"data.n": {"in": list(range(1001))}}, "where.data.n", "at most 1000"),
    ({"data." + ".".join("a" * 16): {"exists": True}}, "where.data." + ".".join("a" * 16),
     "at most 16 segments"),
    ({f"data.f{i}": {"exists": True} for i in range(33)}, "where", "at most 32"),
    ([["data.n", {"eq": 1}]], "where", "an object"),
]


@pytest.mark.parametrize(("where", "field", "words"), INVALID)
def test_invalid_where_is_refused_naming_the_path(where: Any, field: str, words: str) -> None:
    with pytest.raises(HubError) as caught:
        compile_where(where)
    assert caught.value.code == "invalid_filter"
    assert caught.value.details["field"] == field
    assert words in caught.value.message


def test_limits_come_from_config() -> None:
    limits = FiltersConfig(max_in=2, max_conditions=1)
    with pytest.raises(HubError, match="at most 2 values"):
        compile_where({"data.n": {"in": [1, 2, 3]}}, limits)
    with pytest.raises(HubError, match="at most 1 paths"):
        compile_where({"data.n": {"eq": 1}, "event": {"eq": "tick"}}, limits)


class Leg(BaseModel):
    token: str
    amount: int


class Swap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: str = Field(alias="from")
    legs: list[Leg]
    meta: dict[str, Any] = {}
    note: str | None = None


class Burn(BaseModel):
    amount: int


@pytest.mark.parametrize("path", [
    "data.from", "data.from_", "data.legs.0.amount", "data.meta.anything.deeper",
    "data.note", "data.amount",
])
def test_data_paths_an_event_can_have_are_accepted(path: str) -> None:
    compile_where({path: {"exists": False}}, models=[Swap, Burn])


@pytest.mark.parametrize("path, models", [
    ("data.amout", [Swap, Burn]),  # a typo
    ("data.legs.first", [Swap]),  # a list is indexed by position
    ("data.legs.0.price", [Swap]),  # not a field of a leg
    ("data.note.x", [Swap]),  # a string has no fields
    ("data.amount", [Swap]),  # only the kind the subscription does not keep has it
])
def test_data_paths_no_event_can_have_are_refused(path: str, models: list[Any]) -> None:
    with pytest.raises(HubError, match="no event this subscription keeps has this field") as info:
        compile_where({path: {"exists": False}}, models=models)
    assert info.value.details["field"] == f"where.{path}"


# -- on the socket ----------------------------------------------------------------------


@pytest.fixture
async def filtered(start_hub: StartHub) -> RunningHub:
    return await start_hub(enabled=("ticks", "filters"))


async def test_where_narrows_live_and_replayed_events(filtered: RunningHub) -> None:
    big = str(2**70)
    await filtered.publish(*(tick(n, owner=str(2**70 + n)) for n in range(1, 7)))
    client = await filtered.connect()
    where = {"data.owner": {"gt": big}, "data.n": {"nin": [3]}, "event": {"eq": "tick"}}
    ack = await client.request("subscribe", topic="ticks", rewind=4, where=where)
    assert ack["type"] == "ack"
    assert [e["data"]["n"] for e in await client.events(3)] == [4, 5, 6]
    await filtered.publish(tick(0, owner=big), ("ticks", "tock", {"n": 9}), tick(3),
                           tick(8, owner=str(2**70 + 1)))
    assert [e["offset"] for e in await client.events(1)] == [10]
    assert (await client.request("ping"))["type"] == "pong"  # and nothing else came
    again = await filtered.connect()
    resumed = await again.request("subscribe", topic="ticks", where=where,
                                  since={"offset": 0, "epoch": ack["epoch"]})
    assert resumed["recovered"] is True
    assert [e["offset"] for e in await again.events(6)] == [1, 2, 4, 5, 6, 10]
    assert (await again.request("ping"))["type"] == "pong"


async def test_invalid_where_is_an_error_reply(filtered: RunningHub) -> None:
    client = await filtered.connect()
    reply = await client.request("subscribe", topic="ticks", where={"data.n": {"between": 1}})
    assert reply["type"] == "error" and reply["code"] == "invalid_filter"
    assert reply["details"]["field"] == "where.data.n"
    assert "between" in reply["message"]
    typo = await client.request("subscribe", topic="ticks", where={"data.ownr": {"eq": "x"}})
    assert typo["code"] == "invalid_filter" and typo["details"]["fields"] == ["n", "owner"]
    assert "data fields: n, owner" in typo["message"]
    # `owner` is a field of tick events only
    tocks = await client.request("subscribe", topic="ticks", events=["tock"],
                                 where={"data.owner": {"eq": "x"}})
    assert tocks["code"] == "invalid_filter" and tocks["details"]["fields"] == ["n"]
    ok = await client.request("subscribe", topic="ticks", where={"data.n": {"gt": 1}})
    assert ok["type"] == "ack"  # the refused subscribe left nothing behind


async def test_where_without_the_plugin_is_refused(running: RunningHub) -> None:
    client = await running.connect()
    reply = await client.request("subscribe", topic="ticks", where={"data.n": {"gt": 1}})
    assert reply["code"] == "invalid_filter" and reply["details"] == {"field": "where"}


async def test_an_event_no_filter_keeps_is_never_encoded(filtered: RunningHub) -> None:
    clients = [await filtered.connect() for _ in range(3)]
    for index, client in enumerate(clients):
        await client.request("subscribe", topic="ticks", where={"data.n": {"gte": 10 + index}})
    seen: list[Event] = []
    filtered.hub.listeners.append(seen.extend)
    await filtered.hub.publish_many([("ticks", "tick", {"n": 1}, None),
                                     ("ticks", "tick", {"n": 12}, None)])
    for client in clients:
        assert [e["data"]["n"] for e in await client.events(1)] == [12]
    skipped, kept = seen
    assert skipped._frame is None
    assert kept._frame is not None
