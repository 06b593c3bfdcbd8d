"""The `blocks` topic's filter on live and replayed events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningHub, StartHub
from tests.plugins.topics import event, expect_filtered, expect_invalid_filter

A, B, C, D = "addrA", "addrB", "addrC", "addrD"


@pytest.fixture
async def hub(start_hub: StartHub) -> RunningHub:
    return await start_hub(enabled=["blocks"])


def block(height: int) -> Any:
    return event("blocks", "block.new", height=height)


def tx(sender: str, to: str, height: int = 10, status: str = "success") -> Any:
    return event("blocks", "tx.new", from_=sender, to=to, block_height=height, status=status)


async def test_address_keeps_transactions_from_or_to_any_of_them(hub: RunningHub) -> None:
    events = [block(10), tx(A, B), tx(C, D), tx(B, C), event("blocks", "block.finalized"),
              tx(C, A)]
    await expect_filtered(hub, "blocks", {"address": [A]}, events, [1, 5])
    await expect_filtered(hub, "blocks", {"address": [A, D]}, events, [1, 2, 5])


async def test_min_height_uses_each_kinds_height(hub: RunningHub) -> None:
    events = [
        block(5),
        tx(A, B, height=5),
        event("blocks", "chain.reorg", fork_height=6),
        block(7),
        tx(A, B, height=7),
        event("blocks", "block.finalized", height=6),
        event("blocks", "block.finalized", height=8),
        event("blocks", "chain.reorg", fork_height=7),
    ]
    await expect_filtered(hub, "blocks", {"min_height": 7}, events, [3, 4, 6, 7])
    await expect_filtered(hub, "blocks", {"min_height": 0}, events, list(range(8)))


async def test_status_keeps_only_transactions_with_it(hub: RunningHub) -> None:
    events = [tx(A, B), block(10), tx(A, B, status="failed"), event("blocks", "chain.reorg"),
              tx(C, D, status="failed")]
    await expect_filtered(hub, "blocks", {"status": "failed"}, events, [2, 4])
    await expect_filtered(hub, "blocks", {"status": "success"}, events[:1], [0])


async def test_every_given_field_must_match(hub: RunningHub) -> None:
    events = [
        tx(A, B, height=9, status="failed"),
        tx(A, B, height=12, status="success"),
        tx(C, D, height=12, status="failed"),
        block(12),
        tx(B, A, height=11, status="failed"),
    ]
    flt = {"address": [A], "min_height": 10, "status": "failed"}
    await expect_filtered(hub, "blocks", flt, events, [4])


async def test_filter_and_kinds_combine(hub: RunningHub) -> None:
    client = await hub.connect()
    await client.request("subscribe", topic="blocks", events=["block.new", "tx.new"],
                         filter={"min_height": 3})
    offsets = await hub.publish(block(2), event("blocks", "block.finalized", height=4),
                                tx(A, B, height=3), block(3))
    assert [e["offset"] for e in await client.events(2)] == offsets[2:]


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"address": A}, "address"),
        ({"address": []}, "address"),
        ({"address": [1]}, "address"),
        ({"address": [""]}, "address"),
        ({"min_height": "5"}, "min_height"),
        ({"min_height": -1}, "min_height"),
        ({"min_height": 1.5}, "min_height"),
        ({"status": "maybe"}, "status"),
        ({"status": ["failed"]}, "status"),
        ({"from": A}, "from"),
    ],
)
async def test_bad_filter_is_invalid_filter(hub: RunningHub, flt: Any, field: str) -> None:
    await expect_invalid_filter(hub, "blocks", flt, field)
