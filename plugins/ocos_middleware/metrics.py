"""`metrics`: Prometheus text at `GET /metrics`, from one registry per app.

Counters are plain integers bumped once per request, per connection or per published
batch (never per delivery) and turned into metric families when scraped; gauges (open
connections, subscriptions per topic) are read from the hub at scrape time. So the
fan-out loop pays nothing, and a hub without scrapes pays almost nothing.

Families (all `ocos_hub_*`, documented in docs/operations.md): connections,
connections_accepted_total, subscriptions{topic}, events_published_total{topic},
events_delivered_total{topic}, slow_consumer_closes_total, auth_failures_total{code},
requests_total{op,outcome}, rate_limited_total{transport}, http_refusals_total{code},
and the histogram publish_to_send_seconds: from the broker's `ts` of a batch's first
event to the end of the loop tick that wrote its frames (`ts` has millisecond resolution).

Order 500: it sees every request that passed origin and rate limits.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

from ocos_hub import Event, HubError, Middleware, Principal, hookimpl
from ocos_hub.appkeys import HUB
from ocos_hub.config import Secret, Section
from ocos_hub.hub import Hub
from ocos_hub.session import Session
from ocos_middleware._common import installed

PREFIX = "ocos_hub_"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class MetricsConfig(Section):
    path: str = Field("/metrics", pattern=r"^/", description="Path of the scrape endpoint.")
    token: Secret | None = Field(
        None, description="When set, scrapes need `Authorization: Bearer <token>` "
        "(`env:NAME` or `file:/path` keep it out of the file).")
    latency_buckets: list[float] = Field(
        default_factory=lambda: list(LATENCY_BUCKETS),
        description="Upper bounds (seconds) of the publish-to-send histogram's buckets.")


def _counter(name: str, doc: str, label: str | None, values: Mapping[Any, int]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, doc, labels=[label] if label else None)
    for key, value in sorted(values.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family


class HubMetrics(Middleware, Collector):
    """Counts at the stages; a collector of the per-app registry."""

    name: ClassVar[str] = "metrics"
    order: ClassVar[int] = 500

    def __init__(self, config: MetricsConfig) -> None:
        self.config = config
        self.hub: Hub | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            PREFIX + "publish_to_send_seconds", "From the broker's timestamp of a batch to "
            "the end of the loop tick that wrote its frames.",
            buckets=config.latency_buckets, registry=self.registry)
        self.registry.register(self)
        self.published: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.auth_failures: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.rate_limited_socket = 0

    # -- counting ------------------------------------------------------------------------

    def on_published(self, events: list[Event], deliveries: Mapping[str, int]) -> None:
        published = self.published
        for event in events:
            published[event.topic] += 1
        self.delivered.update(deliveries)
        if events and any(deliveries.values()):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._sent(events[0].ts)
            else:
                # Runs after the flush callbacks this batch scheduled: its writes are done.
                loop.call_soon(self._sent, events[0].ts)

    def _sent(self, ts: str) -> None:
        published = datetime.fromisoformat(ts).timestamp()
        self.latency.observe(max(0.0, time.time() - published))

    async def on_auth(self, session: Session | None, principal: Principal | None,
                      error: str | None, request: web.Request | None) -> None:
        if error is not None:
            self.auth_failures[error] += 1

    async def on_reply(self, session: Session, request: dict[str, Any] | None,
                       reply: dict[str, Any]) -> None:
        op = request.get("type") if request else None
        if not isinstance(op, str) or op not in session.hub.operations:
            op = "other"
        code = reply.get("code", "ok") if reply["type"] == "error" else "ok"
        self.requests[(op, code)] += 1
        if code == "rate_limited":
            self.rate_limited_socket += 1

    # -- scraping ------------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        hub = self.hub
        if hub is None:
            return
        yield GaugeMetricFamily(PREFIX + "connections", "Open WebSocket connections.",
                                value=len(hub.sessions))
        yield CounterMetricFamily(PREFIX + "connections_accepted", "WebSocket connections "
                                  "accepted since start.", value=hub.stats.connections_total)
        subscriptions = GaugeMetricFamily(PREFIX + "subscriptions", "Live subscriptions.",
                                          labels=["topic"])
        for topic in sorted(hub.topics):
            subscriptions.add_metric([topic], hub.router.count(topic))
        yield subscriptions
        yield _counter("events_published", "Events received from the broker.", "topic",
                       self.published)
        yield _counter("events_delivered", "Live event frames queued to subscribers.",
                       "topic", self.delivered)
        yield CounterMetricFamily(PREFIX + "slow_consumer_closes", "Connections closed as "
                                  "slow consumers (4008).", value=hub.stats.slow_consumers)
        yield _counter("auth_failures", "Refused credentials by error code.", "code",
                       self.auth_failures)
        requests = CounterMetricFamily(PREFIX + "requests", "Socket requests by type and "
                                       "outcome.", labels=["op", "outcome"])
        for (op, outcome), value in sorted(self.requests.items()):
            requests.add_metric([op, outcome], value)
        yield requests
        yield _counter("rate_limited", "Requests refused as rate_limited.", "transport",
                       {"socket": self.rate_limited_socket,
                        "http": hub.stats.http_refusals.get("rate_limited", 0)})
        yield _counter("http_refusals", "HTTP refusals by error code.", "code",
                       hub.stats.http_refusals)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def scrape(request: web.Request) -> web.Response:
    """`GET /metrics`: the Prometheus text format."""
    (metrics,) = installed(request.app[HUB], HubMetrics)
    token = metrics.config.token
    if token is not None:
        presented = request.headers.get("Authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            raise HubError("unauthenticated", "scraping needs the metrics bearer token")
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return MetricsConfig


@hookimpl
def ocos_middleware(config: MetricsConfig) -> list[Middleware]:
    return [HubMetrics(config)]


@hookimpl
def ocos_routes(config: MetricsConfig) -> list[web.AbstractRouteDef]:
    return [web.get(config.path, scrape)]


@hookimpl
def ocos_startup(hub: Hub) -> None:
    for metrics in installed(hub, HubMetrics):
        metrics.hub = hub
