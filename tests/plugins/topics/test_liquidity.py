"""The `liquidity` topic's filter on live and replayed events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningHub, StartHub
from tests.plugins.topics import event, expect_filtered, expect_invalid_filter


@pytest.fixture
async def hub(start_hub: StartHub) -> RunningHub:
    return await start_hub(enabled=["liquidity"])


def pool(pid: str, a: str = "OCOS", b: str = "USDC") -> Any:
    return event("liquidity", "pool.created", pool_id=pid, token_a=a, token_b=b)


def swap(pid: str, trader: str = "t1", tin: str = "USDC", tout: str = "OCOS") -> Any:
    return event("liquidity", "swap", pool_id=pid, trader=trader, token_in=tin, token_out=tout)


def added(pid: str, provider: str = "lp1") -> Any:
    return event("liquidity", "liquidity.added", pool_id=pid, provider=provider)


def removed(pid: str, provider: str = "lp1") -> Any:
    return event("liquidity", "liquidity.removed", pool_id=pid, provider=provider)


def reward(account: str = "f1", token: str = "OCOS") -> Any:
    return event("liquidity", "farm.reward", account=account, token=token)


def stake(kind: str, account: str) -> Any:
    return event("liquidity", kind, account=account)


def bridge(sender: str = "s1", recipient: str = "r1", token: str = "USDC") -> Any:
    return event("liquidity", "bridge.transfer", sender=sender, recipient=recipient, token=token)


def price() -> Any:
    return event("liquidity", "oracle.price")


async def test_pool_id_keeps_pool_events_of_those_pools(hub: RunningHub) -> None:
    events = [pool("p1"), pool("p2"), swap("p1"), swap("p2"), reward(), stake("stake", "a"),
              bridge(), price(), added("p1"), removed("p3"), removed("p1")]
    await expect_filtered(hub, "liquidity", {"pool_id": ["p1"]}, events, [0, 2, 8, 10])
    await expect_filtered(hub, "liquidity", {"pool_id": ["p2", "p3"]}, events[:10],
                          [1, 3, 9])


async def test_token_keeps_events_naming_any_of_the_tokens(hub: RunningHub) -> None:
    events = [
        pool("p1", "OCOS", "USDC"),    # token_a
        pool("p2", "WETH", "OCOS"),    # token_b
        pool("p3", "WETH", "USDC"),
        swap("p1", tin="OCOS", tout="USDC"),
        swap("p2", tin="WETH", tout="OCOS"),
        swap("p3", tin="WETH", tout="USDC"),
        added("p1"),                   # carries no token
        stake("unstake", "a"),
        price(),
        reward(token="USDC"),
        bridge(token="USDC"),
        reward(token="OCOS"),
        bridge(token="OCOS"),
    ]
    await expect_filtered(hub, "liquidity", {"token": ["OCOS"]}, events, [0, 1, 3, 4, 11, 12])
    await expect_filtered(hub, "liquidity", {"token": ["WETH", "USDC"]}, events[:11],
                          [0, 1, 2, 3, 4, 5, 9, 10])


async def test_account_keeps_events_it_takes_part_in(hub: RunningHub) -> None:
    events = [
        pool("p1"),
        swap("p1", trader="x"),
        swap("p1", trader="y"),
        added("p1", provider="x"),
        removed("p1", provider="y"),
        removed("p1", provider="x"),
        reward(account="x"),
        reward(account="y"),
        stake("stake", "x"),
        stake("unstake", "x"),
        stake("stake", "y"),
        price(),
        bridge(sender="x", recipient="z"),
        bridge(sender="z", recipient="y"),
        bridge(sender="z", recipient="x"),
    ]
    await expect_filtered(hub, "liquidity", {"account": "x"}, events,
                          [1, 3, 5, 6, 8, 9, 12, 14])


async def test_every_given_field_must_match(hub: RunningHub) -> None:
    events = [swap("p1", trader="x", tin="WETH", tout="USDC"), swap("p2", trader="x"),
              swap("p1", trader="y"), added("p1", provider="x"), reward(account="x"),
              swap("p1", trader="x")]
    flt = {"pool_id": ["p1"], "token": ["OCOS"], "account": "x"}
    await expect_filtered(hub, "liquidity", flt, events, [5])


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ({"pool": ["p1"]}, "pool"),
        ({"pool_id": "p1"}, "pool_id"),
        ({"pool_id": []}, "pool_id"),
        ({"token": "OCOS"}, "token"),
        ({"token": [1]}, "token"),
        ({"account": ["x"]}, "account"),
        ({"account": 1}, "account"),
    ],
)
async def test_bad_filter_is_invalid_filter(hub: RunningHub, flt: Any, field: str) -> None:
    await expect_invalid_filter(hub, "liquidity", flt, field)
