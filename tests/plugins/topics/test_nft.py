"""The `nft` topic's filter on live and replayed events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningHub, StartHub
from tests.plugins.topics import event, expect_filtered, expect_invalid_filter

C1, C2 = "coll1", "coll2"


@pytest.fixture
async def hub(start_hub: StartHub) -> RunningHub:
    return await start_hub(enabled=["nft"])


def collection(c: str, creator: str = "maker") -> Any:
    return event("nft", "collection.created", collection=c, creator=creator)


def minted(c: str, tid: str, owner: str = "o") -> Any:
    return event("nft", "nft.minted", collection=c, token_id=tid, owner=owner)


def moved(c: str, tid: str, sender: str = "o", to: str = "p") -> Any:
    return event("nft", "nft.transferred", collection=c, token_id=tid, from_=sender, to=to)


def listed(c: str, tid: str, seller: str = "o") -> Any:
    return event("nft", "listing.created", collection=c, token_id=tid, seller=seller)


def cancelled(c: str | None, tid: str | None, seller: str | None = None) -> Any:
    return event("nft", "listing.cancelled", collection=c, token_id=tid, seller=seller)


def sold(c: str, tid: str, seller: str = "o", buyer: str = "p") -> Any:
    return event("nft", "sale", collection=c, token_id=tid, seller=seller, buyer=buyer)


def auction(c: str, tid: str, seller: str | None = None) -> Any:
    return event("nft", "auction.started", collection=c, token_id=tid, seller=seller)


def bid(c: str | None, tid: str | None, bidder: str = "b") -> Any:
    return event("nft", "auction.bid", collection=c, token_id=tid, bidder=bidder)


def settled(c: str | None, tid: str | None, winner: str = "w") -> Any:
    return event("nft", "auction.settled", collection=c, token_id=tid, winner=winner)


async def test_collection_keeps_kinds_that_carry_it(hub: RunningHub) -> None:
    events = [collection(C1), collection(C2), minted(C1, "1"), minted(C2, "1"), moved(C1, "1"),
              listed(C1, "1"), cancelled(None, None), cancelled(C1, "1"), sold(C1, "1"),
              auction(C2, "2"), auction(C1, "2"), bid(None, None), bid(C1, "2"),
              settled(C2, "2"), settled(C1, "2")]
    await expect_filtered(hub, "nft", {"collection": [C1]}, events,
                          [0, 2, 4, 5, 7, 8, 10, 12, 14])
    await expect_filtered(hub, "nft", {"collection": [C1, C2]}, events[:4], [0, 1, 2, 3])


async def test_token_id_keeps_kinds_that_carry_it(hub: RunningHub) -> None:
    events = [collection(C1), minted(C1, "1"), minted(C1, "2"), minted(C2, "1"),
              moved(C1, "1"), cancelled(None, None), cancelled(C1, "1"), listed(C1, "2"),
              bid(None, None), bid(C1, "1"), settled(C1, "1"), sold(C1, "1")]
    await expect_filtered(hub, "nft", {"token_id": "1"}, events, [1, 3, 4, 6, 9, 10, 11])
    # one token: a collection and a token id
    await expect_filtered(hub, "nft", {"collection": [C1], "token_id": "1"}, events,
                          [1, 4, 6, 9, 10, 11])


@pytest.mark.parametrize(
    ("party", "events", "keep"),
    [
        ("owner", [minted(C1, "1", owner="o"), minted(C1, "2", owner="x")], [1]),
        ("from", [moved(C1, "1", sender="o"), moved(C1, "1", sender="x", to="o")], [1]),
        ("to", [moved(C1, "1", sender="o", to="p"), moved(C1, "1", to="x")], [1]),
        ("seller", [listed(C1, "1"), cancelled(C1, "1"), auction(C1, "1"), sold(C1, "1"),
                    listed(C1, "1", seller="x"), cancelled(C1, "1", seller="x"),
                    auction(C1, "1", seller="x"), sold(C1, "1", seller="x")], [4, 5, 6, 7]),
        ("buyer", [sold(C1, "1"), sold(C1, "1", buyer="x")], [1]),
        ("bidder", [bid(C1, "1"), bid(None, None, bidder="x")], [1]),
        ("winner", [settled(C1, "1"), settled(None, None, winner="x")], [1]),
        ("creator", [collection(C1), collection(C2, creator="x")], [1]),
    ],
)
async def test_account_matches_any_party(
    hub: RunningHub, party: str, events: list[Any], keep: list[int]
) -> None:
    await expect_filtered(hub, "nft", {"account": "x"}, events, keep)


async def test_account_follows_a_trade(hub: RunningHub) -> None:
    events = [collection(C1, creator="x"), minted(C1, "1", owner="x"), listed(C1, "1", "x"),
              minted(C1, "2", owner="y"), sold(C1, "1", seller="x", buyer="y"),
              moved(C1, "2", sender="y", to="z"), bid(C1, "2", bidder="y"),
              moved(C1, "1", sender="y", to="x")]
    await expect_filtered(hub, "nft", {"account": "x"}, events, [0, 1, 2, 4, 7])


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"owner": "x"}, "owner"),
        ({"collection": C1}, "collection"),
        ({"collection": []}, "collection"),
        ({"token_id": 1}, "token_id"),
        ({"token_id": ["1"]}, "token_id"),
        ({"account": ["x"]}, "account"),
    ],
)
async def test_bad_filter_is_invalid_filter(hub: RunningHub, flt: Any, field: str) -> None:
    await expect_invalid_filter(hub, "nft", flt, field)
