"""All middleware plugins at once: the documented order, and a hub that works through them."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ocos_middleware.tracing import TracingPlugin
from tests.conftest import StartHub
from tests.plugins.middleware.helpers import AUTH
from tests.ticks import tick

ALL = ["origin", "ratelimit", "audit", "metrics", "tracing", "logging"]


async def test_the_chain_runs_in_documented_order(start_hub: StartHub, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = {"plugins": {
        "origin": {"allowed_origins": ["https://*.dapps.ocos.example"]},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "logging": {"output": str(tmp_path / "hub.log")},
    }}
    # enabled in reverse: `order`, not the list, decides the chain
    running = await start_hub(config, plugins=[AUTH, ("tracing", TracingPlugin(provider))],
                              enabled=["ticks", "password", *reversed(ALL)])
    chain = [(mw.name, mw.order) for mw in running.hub.middleware]
    assert chain == [("logging.http", 10), ("origin", 100), ("ratelimit", 200),
                     ("audit", 400), ("metrics", 500), ("tracing", 600), ("logging", 700)]

    client = await running.connect(origin="https://swap.dapps.ocos.example")
    assert client.welcome["limits"]["rate"] == {"messages_per_second": 20.0, "burst": 40}
    await client.request("subscribe", topic="ticks")
    await running.publish(tick(1))
    assert (await client.events(1))[0]["offset"] == 1
    assert (await running.http.get("/metrics")).status == 200
    await client.ws.close()
    await running.http.close()
    assert exporter.get_finished_spans()
    assert (tmp_path / "audit.jsonl").read_text().count('"event":"subscribe"') == 1
    assert '"event":"connect"' in (tmp_path / "hub.log").read_text()
