"""The origin plugin: foreign pages cannot open sockets; allowed ones get CORS on the API."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import WSServerHandshakeError

from ocos_hub.app import create_app
from ocos_hub.config import ConfigError, parse_config
from tests.conftest import StartHub
from tests.plugins.middleware.helpers import AUTH, handshake
from tests.ticks import tick

ORIGINS = {"plugins": {"origin": {"allowed_origins": [
    "https://wallet.ocos.example", "https://*.dapps.ocos.example"]}}}


def with_origin(**origin: Any) -> dict[str, Any]:
    return {"plugins": {"origin": {"allowed_origins": [
        "https://wallet.ocos.example", "https://*.dapps.ocos.example"], **origin}}}


async def test_foreign_origin_is_refused_before_the_upgrade(start_hub: StartHub) -> None:
    running = await start_hub(ORIGINS, enabled=["ticks", "origin"])
    status, body = await handshake(running, Origin="https://evil.example")
    assert status == 403
    assert body == {"code": "forbidden_origin",
                    "message": "origin 'https://evil.example' may not open sockets on this hub",
                    "details": {"origin": "https://evil.example"}}
    with pytest.raises(WSServerHandshakeError) as refused:
        await running.connect(origin="https://evil.example")
    assert refused.value.status == 403
    assert not running.hub.sessions


@pytest.mark.parametrize("origin", [
    "https://wallet.ocos.example",
    "https://WALLET.ocos.example:443",
    "https://swap.dapps.ocos.example",
    "https://tenant-7.eu.dapps.ocos.example",
])
async def test_allowed_origins_exact_and_wildcard(start_hub: StartHub, origin: str) -> None:
    running = await start_hub(ORIGINS, enabled=["ticks", "origin"])
    client = await running.connect(origin=origin)
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"


@pytest.mark.parametrize("origin", [
    "https://dapps.ocos.example",             # the wildcard's bare domain
    "http://swap.dapps.ocos.example",         # another scheme
    "https://swap.dapps.ocos.example:8443",   # another port
    "https://swap.dapps.ocos.example.evil.example",
    "https://evildapps.ocos.example",
    "null",
])
async def test_lookalike_origins_are_refused(start_hub: StartHub, origin: str) -> None:
    running = await start_hub(ORIGINS, enabled=["ticks", "origin"])
    status, body = await handshake(running, Origin=origin)
    assert (status, body and body["code"]) == (403, "forbidden_origin")


async def test_no_origin_header_is_allowed_unless_configured(start_hub: StartHub) -> None:
    running = await start_hub(ORIGINS, enabled=["ticks", "origin"])
    assert (await handshake(running))[0] == 101
    strict = await start_hub(with_origin(allow_missing_origin=False), enabled=["ticks", "origin"])
    status, body = await handshake(strict)
    assert status == 403 and body is not None
    assert body["code"] == "forbidden_origin" and body["details"] == {"origin": None}


async def test_cors_preflight_for_an_allowed_origin(start_hub: StartHub) -> None:
    running = await start_hub(with_origin(cors={"max_age": 900, "allow_credentials": True}),
                              enabled=["ticks", "origin"])
    resp = await running.http.options("/api/v1/events", headers={
        "Origin": "https://swap.dapps.ocos.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key",
    })
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "https://swap.dapps.ocos.example"
    assert resp.headers["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert resp.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-API-Key"
    assert resp.headers["Access-Control-Max-Age"] == "900"
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert resp.headers["Vary"] == "Origin"


async def test_cors_preflight_refusals(start_hub: StartHub) -> None:
    running = await start_hub(ORIGINS, enabled=["ticks", "origin"])
    asks = [
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        {"Origin": "https://wallet.ocos.example", "Access-Control-Request-Method": "DELETE"},
        {"Origin": "https://wallet.ocos.example", "Access-Control-Request-Method": "POST",
         "Access-Control-Request-Headers": "X-Custom"},
    ]
    for headers in asks:
        resp = await running.http.options("/api/v1/events", headers=headers)
        assert resp.status == 403, headers
        assert (await resp.json())["code"] == "forbidden_origin"
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_cors_headers_on_answers_and_errors(start_hub: StartHub) -> None:
    running = await start_hub(ORIGINS, enabled=["ticks", "origin"])
    allowed = {"Origin": "https://wallet.ocos.example"}
    await running.publish(tick(1), headers=allowed)
    resp = await running.http.get("/api/v1/topics", headers=allowed)
    assert resp.headers["Access-Control-Allow-Origin"] == "https://wallet.ocos.example"
    assert resp.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert "Access-Control-Allow-Credentials" not in resp.headers
    missing = await running.http.get("/api/v1/topics/nope/events", headers=allowed)
    assert missing.status == 404  # the page can read why
    assert missing.headers["Access-Control-Allow-Origin"] == "https://wallet.ocos.example"
    # a foreign page: reads get no CORS headers (the browser hides them), writes are refused
    foreign = {"Origin": "https://evil.example"}
    resp = await running.http.get("/api/v1/topics", headers=foreign)
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await running.http.post("/api/v1/events", headers=foreign,
                                   json={"topic": "ticks", "event": "tick", "data": {"n": 2}})
    assert resp.status == 403 and (await resp.json())["code"] == "forbidden_origin"
    assert (await running.hub.broker.position("ticks")).offset == 1


async def test_refused_credentials_still_carry_cors(start_hub: StartHub) -> None:
    running = await start_hub(ORIGINS, plugins=[AUTH], enabled=["ticks", "password", "origin"])
    resp = await running.http.post("/api/v1/events", headers={
        "Origin": "https://wallet.ocos.example", "Authorization": "Bearer nope"},
        json={"topic": "ticks", "event": "tick", "data": {"n": 1}})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == "https://wallet.ocos.example"


@pytest.mark.parametrize(("origins", "cors", "field"), [
    (["https://app.example/path"], {}, "allowed_origins"),
    (["ftp://app.example"], {}, "allowed_origins"),
    (["https://app.*.example"], {}, "allowed_origins"),
    (["*"], {"allow_credentials": True}, "allow_credentials"),
])
def test_bad_origin_config_is_refused(origins: list[str], cors: dict[str, Any],
                                      field: str) -> None:
    config = parse_config({"plugins": {"enabled": ["origin"], "origin": {
        "allowed_origins": origins, "cors": cors}}}, "hub.toml")
    with pytest.raises(ConfigError) as caught:
        create_app(config)
    assert "hub.toml: [plugins.origin]" in str(caught.value)
    assert field in str(caught.value)
