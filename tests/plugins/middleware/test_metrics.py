"""The metrics plugin: /metrics parses as Prometheus text and counts exactly what happened."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningHub, StartHub
from tests.plugins.middleware.helpers import ALICE_TOKEN, AUTH, handshake
from tests.ticks import tick

SLOW = 0.001
CONFIG = {"plugins": {"ratelimit": {
    "messages_per_second": SLOW, "burst": 20, "second_allowance": 100,
    "principal_messages_per_second": 0, "connections_per_second": 0,
    "http_requests_per_second": SLOW, "http_burst": 2,
}}}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(running: RunningHub, **kwargs: Any) -> Samples:
    resp = await running.http.get("/metrics", **kwargs)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(await resp.text())
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_metrics_count_what_the_clients_did(start_hub: StartHub) -> None:
    running = await start_hub(CONFIG, plugins=[AUTH],
                              enabled=["ticks", "password", "ratelimit", "metrics"])
    before = await scrape(running)
    assert value(before, "ocos_hub_connections") == 0
    assert value(before, "ocos_hub_subscriptions", topic="ticks") == 0
    assert value(before, "ocos_hub_publish_to_send_seconds_count") == 0

    anonymous = await running.connect()
    alice = await running.connect(headers={"Authorization": f"Bearer {ALICE_TOKEN}"})
    flooder = await running.connect()
    assert (await handshake(running, Authorization="Bearer wrong-token-Xc1"))[0] == 401
    assert (await anonymous.request("auth", method="password", user="alice",
                                    password="nope"))["code"] == "invalid_credentials"
    for client in (anonymous, alice):
        assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"
    assert (await alice.request("subscribe", topic="private"))["type"] == "ack"

    await running.publish(tick(1), tick(2), tick(3))  # one batch, two subscribers
    for client in (anonymous, alice):
        await client.events(3)
    mine = await alice.request("publish", topic="private", event="tick",
                               data={"n": 4, "owner": "alice"})
    assert mine["type"] == "ack"
    await alice.events(1)
    replies = [await flooder.request("ping") for _ in range(22)]
    assert [r["type"] for r in replies].count("error") == 2
    assert (await running.http.get("/api/v1/topics")).status == 200
    assert (await running.http.get("/api/v1/topics")).status == 429

    after = await scrape(running)
    assert value(after, "ocos_hub_connections") == 3
    assert value(after, "ocos_hub_connections_accepted_total") == 3
    assert value(after, "ocos_hub_subscriptions", topic="ticks") == 2
    assert value(after, "ocos_hub_subscriptions", topic="private") == 1
    assert value(after, "ocos_hub_events_published_total", topic="ticks") == 3
    assert value(after, "ocos_hub_events_published_total", topic="private") == 1
    assert value(after, "ocos_hub_events_delivered_total", topic="ticks") == 6
    assert value(after, "ocos_hub_events_delivered_total", topic="private") == 1
    assert value(after, "ocos_hub_slow_consumer_closes_total") == 0
    assert value(after, "ocos_hub_auth_failures_total", code="invalid_credentials") == 2
    assert value(after, "ocos_hub_rate_limited_total", transport="socket") == 2
    assert value(after, "ocos_hub_rate_limited_total", transport="http") == 1
    assert value(after, "ocos_hub_http_refusals_total", code="invalid_credentials") == 1
    assert value(after, "ocos_hub_requests_total", op="ping", outcome="ok") == 20
    assert value(after, "ocos_hub_requests_total", op="ping", outcome="rate_limited") == 2
    assert value(after, "ocos_hub_requests_total", op="subscribe", outcome="ok") == 3
    assert value(after, "ocos_hub_requests_total", op="auth",
                 outcome="invalid_credentials") == 1
    assert value(after, "ocos_hub_requests_total", op="publish", outcome="ok") == 1
    # one observation per batch that reached someone: the HTTP batch and alice's publish
    assert value(after, "ocos_hub_publish_to_send_seconds_count") == 2
    assert value(after, 'ocos_hub_publish_to_send_seconds_bucket', le="+Inf") == 2
    assert value(after, "ocos_hub_publish_to_send_seconds_sum") >= 0


async def test_scrapes_can_require_a_token(start_hub: StartHub) -> None:
    running = await start_hub({"plugins": {"metrics": {"token": "scrape-me",
                                                       "path": "/internal/metrics"}}},
                              enabled=["ticks", "metrics"])
    resp = await running.http.get("/internal/metrics")
    assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated"
    resp = await running.http.get("/internal/metrics",
                                  headers={"Authorization": "Bearer scrape-me"})
    assert resp.status == 200 and "ocos_hub_connections 0.0" in await resp.text()
    assert (await running.http.get("/metrics")).status == 404


async def test_each_app_has_its_own_registry(start_hub: StartHub) -> None:
    one = await start_hub(enabled=["ticks", "metrics"])
    two = await start_hub(enabled=["ticks", "metrics"])
    await one.publish(tick(1))
    assert value(await scrape(one), "ocos_hub_events_published_total", topic="ticks") == 1
    assert ("ocos_hub_events_published_total", frozenset({("topic", "ticks")})) not in (
        await scrape(two))
