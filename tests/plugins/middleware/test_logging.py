"""The logging plugin: access and error logs as JSON lines, filtered by level."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ocos_hub import Operation, hookimpl
from tests.conftest import StartHub
from tests.plugins.middleware.helpers import ALICE_TOKEN, AUTH, SECRETS, handshake
from tests.ticks import tick


def logged(path: Path, **options: Any) -> dict[str, Any]:
    return {"plugins": {"logging": {"output": str(path), **options},
                        "ratelimit": {"http_requests_per_second": 0.001, "http_burst": 2}}}


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_access_and_error_lines_are_json(start_hub: StartHub, tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    running = await start_hub(logged(log, level="DEBUG"), plugins=[AUTH],
                              enabled=["ticks", "password", "ratelimit", "logging"])
    client = await running.connect(params={"token": ALICE_TOKEN},
                                   headers={"User-Agent": "dashboard/1.0"})
    await client.request("subscribe", topic="ticks")
    await client.request("subscribe", topic="nope")
    await running.publish(tick(1), headers={"X-Request-ID": "req-42"})
    await client.events(1)
    assert (await running.http.get(f"/api/v1/topics?token={ALICE_TOKEN}")).status == 200
    assert (await running.http.get("/api/v1/topics")).status == 429  # refused by ratelimit
    assert (await handshake(running, Authorization="Bearer wrong-token-Xc1"))[0] == 401
    await client.ws.close()
    await running.http.close()

    records = lines(log)
    for record in records:
        assert {"time", "level", "logger", "event"} <= set(record)
    events = [(r["event"], r["level"], r["logger"]) for r in records]
    assert ("connect", "INFO", "ocos_hub.access") in events
    assert ("request", "DEBUG", "ocos_hub.access") in events
    assert ("request_failed", "WARNING", "ocos_hub.error") in events
    assert ("auth_failed", "WARNING", "ocos_hub.error") in events
    assert ("handshake_refused", "WARNING", "ocos_hub.error") in events
    assert ("disconnect", "INFO", "ocos_hub.access") in events

    (connect,) = [r for r in records if r["event"] == "connect"]
    assert connect["principal"] == "alice" and connect["user_agent"] == "dashboard/1.0"
    (failed,) = [r for r in records if r["event"] == "request_failed"]
    assert (failed["op"], failed["code"], failed["request_id"]) == ("subscribe",
                                                                    "unknown_topic", 2)
    http = [(r["method"], r["path"], r["status"], r["level"], r["code"]) for r in records
            if r["event"] == "http"]
    assert http == [("POST", "/api/v1/events", 200, "INFO", None),
                    ("GET", "/api/v1/topics", 200, "INFO", None),
                    ("GET", "/api/v1/topics", 429, "WARNING", "rate_limited")]
    (publish,) = [r for r in records if r["event"] == "http" and r["method"] == "POST"]
    assert publish["request_id"] == "req-42" and publish["duration_ms"] >= 0
    (disconnect,) = [r for r in records if r["event"] == "disconnect"]
    assert disconnect["code"] == 1000
    text = log.read_text()
    assert all(secret not in text for secret in SECRETS)


async def test_the_level_drops_what_is_below_it(start_hub: StartHub, tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    running = await start_hub(logged(log, level="WARNING"),
                              enabled=["ticks", "ratelimit", "logging"])
    client = await running.connect()
    await client.request("subscribe", topic="ticks")
    await client.request("unsubscribe", topic="nope")
    await running.http.get("/api/v1/topics")
    await client.ws.close()
    await running.http.close()
    assert [(r["event"], r["level"], r.get("code")) for r in lines(log)] == [
        ("request_failed", "WARNING", "not_subscribed")]


class Explode(Operation):
    """A plugin operation with a bug."""

    name = "explode"

    async def __call__(self, session: Any, request: Any) -> dict[str, Any]:
        raise RuntimeError("boom")


class ExplodePlugin:
    @hookimpl
    def ocos_operations(self, config: object) -> list[Operation]:
        return [Explode()]


async def test_core_errors_become_json_lines(start_hub: StartHub, tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    running = await start_hub(logged(log, capture_core=True),
                              plugins=[("explode", ExplodePlugin())],
                              enabled=["ticks", "explode", "logging"])
    client = await running.connect()
    assert (await client.request("explode"))["code"] == "internal_error"
    await client.ws.close()
    await running.http.close()
    records = lines(log)
    (exception,) = [r for r in records if r["event"] == "exception"]
    assert exception["level"] == "ERROR" and exception["source"] == "ocos_hub.session"
    assert "RuntimeError: boom" in exception["traceback"]
    (failed,) = [r for r in records if r["event"] == "request_failed"]
    assert failed["level"] == "ERROR" and failed["code"] == "internal_error"
    assert failed["op"] == "explode"
    assert logging.getLogger("ocos_hub").propagate  # restored at shutdown
