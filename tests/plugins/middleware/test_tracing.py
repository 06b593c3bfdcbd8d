"""The tracing plugin: spans for handshakes, requests and publish -> fan-out."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from ocos_hub.app import create_app
from ocos_hub.config import ConfigError, parse_config
from ocos_middleware.tracing import TracingPlugin
from tests.conftest import StartHub
from tests.plugins.middleware.helpers import ALICE_TOKEN, AUTH, handshake
from tests.ticks import tick


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> tuple[str, object]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return ("tracing", TracingPlugin(provider))


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_handshake_request_and_fanout_spans(
    start_hub: StartHub, exporter: InMemorySpanExporter, tracing: tuple[str, object],
) -> None:
    running = await start_hub(plugins=[AUTH, tracing], enabled=["ticks", "password", "tracing"])
    client = await running.connect(headers={"Authorization": f"Bearer {ALICE_TOKEN}"})
    await client.request("subscribe", topic="ticks")
    published = await client.request("publish", topic="ticks", event="tick", data={"n": 1})
    await client.events(1)
    assert (await client.request("subscribe", topic="nope"))["code"] == "unknown_topic"
    await running.publish(tick(2), tick(3))
    await client.events(2)
    spans = exporter.get_finished_spans()

    (accepted,) = named(spans, "ws.handshake")
    assert accepted.attributes is not None
    assert accepted.attributes["ocos.session"] == client.welcome["session"]
    assert accepted.attributes["ocos.principal"] == "alice"
    assert accepted.status.status_code is not StatusCode.ERROR

    subscribes = named(spans, "ws subscribe")
    assert [s.attributes and s.attributes["ocos.outcome"] for s in subscribes] == [
        "ok", "unknown_topic"]
    assert subscribes[1].status.status_code is StatusCode.ERROR
    assert all(s.links and s.links[0].context.span_id == accepted.context.span_id
               for s in subscribes)

    (publish,) = named(spans, "ws publish")
    assert publish.attributes is not None
    assert publish.attributes["ocos.topic"] == "ticks"
    assert publish.attributes["ocos.request_id"] == "2"
    socket_fanout, http_fanout = named(spans, "ocos.fanout")
    assert socket_fanout.parent is not None
    assert socket_fanout.parent.span_id == publish.context.span_id
    assert socket_fanout.context.trace_id == publish.context.trace_id
    assert socket_fanout.attributes is not None
    assert socket_fanout.attributes["ocos.deliveries"] == 1
    assert published["offset"] == 1

    (api,) = named(spans, "HTTP POST /api/v1/events")
    assert http_fanout.parent is not None and http_fanout.parent.span_id == api.context.span_id
    assert http_fanout.attributes is not None
    assert http_fanout.attributes["ocos.events"] == 2
    assert http_fanout.attributes["ocos.topics"] == ("ticks",)
    assert api.attributes is not None and api.attributes["http.response.status_code"] == 200


async def test_refused_handshake_and_caller_trace(
    start_hub: StartHub, exporter: InMemorySpanExporter, tracing: tuple[str, object],
) -> None:
    running = await start_hub(plugins=[AUTH, tracing], enabled=["ticks", "password", "tracing"])
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    status, _ = await handshake(running, Authorization="Bearer wrong",
                                traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    assert status == 401
    (refused,) = named(exporter.get_finished_spans(), "ws.handshake")
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.attributes is not None
    assert refused.attributes["ocos.error_code"] == "invalid_credentials"
    assert f"{refused.context.trace_id:032x}" == trace_id


def test_tracing_without_opentelemetry_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m.startswith("opentelemetry")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # what a missing package does
    config = parse_config({"plugins": {"enabled": ["tracing"]}})
    with pytest.raises(ConfigError, match=r"OpenTelemetry is not installed: pip install "
                       r"'ocos-hub\[otel\]'"):
        create_app(config)


async def test_console_exporter_writes_spans_at_shutdown(
    start_hub: StartHub, capsys: pytest.CaptureFixture[str],
) -> None:
    running = await start_hub({"plugins": {"tracing": {"exporter": "console",
                                                       "service_name": "hub-under-test"}}},
                              enabled=["ticks", "tracing"])
    client = await running.connect()
    await client.request("ping")
    await client.ws.close()
    await running.http.close()  # the provider is flushed and shut down
    out = capsys.readouterr().out
    assert '"name": "ws.handshake"' in out and '"name": "ws ping"' in out
    assert '"service.name": "hub-under-test"' in out


def test_otlp_exporter_needs_its_package() -> None:
    config = parse_config({"plugins": {"enabled": ["tracing"],
                                       "tracing": {"exporter": "otlp"}}})
    with pytest.raises(ConfigError, match="opentelemetry-exporter-otlp-proto-http"):
        create_app(config)
