"""GET /openapi.json: a valid OpenAPI 3.1 document of every route the hub serves."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from ocos_hub.docs.asyncapi import internal_refs
from tests.conftest import StartHub
from tests.docs.helpers import full_hub, get_json, resolve
from tests.ticks import tick


def response_errors(document: dict[str, Any], path: str, method: str, status: str,
                    body: Any) -> list[str]:
    """Why `body` does not fit the documented JSON response."""
    response = document["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = resolve(document, response["$ref"])
    schema = response["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**document, **schema})
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(body)]


async def test_document_is_valid_openapi_3_1(start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    document = await get_json(running, "/openapi.json")
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 specification
    for ref in internal_refs(document):
        resolve(document, ref)
    assert document["servers"] == [{"url": str(running.http.make_url("")).rstrip("/")}]


async def test_every_route_of_the_app_is_described(start_hub: StartHub) -> None:
    """Core routes, docs routes and plugin routes alike: none is left out."""
    running = await full_hub(start_hub)
    document = await get_json(running, "/openapi.json")
    described = {(path, method) for path, item in document["paths"].items()
                 for method in item}
    served = set()
    for route in running.app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        served.add((path, route.method.lower()))
    assert served <= described, served - described


async def test_plugin_routes_by_hook_and_by_docstring(start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    document = await get_json(running, "/openapi.json")
    echo = document["paths"]["/api/v1/echo"]["get"]
    assert echo["summary"] == "Echo the text"
    schema = echo["responses"]["200"]["content"]["application/json"]["schema"]
    assert resolve(document, schema["$ref"])["properties"]["text"]["type"] == "string"
    plain = document["paths"]["/api/v1/plain/{item}"]["get"]
    assert plain["summary"] == "A route described by its docstring only."
    assert plain["description"] == "The rest of the docstring becomes the description."
    assert plain["parameters"][0]["name"] == "item"
    wallet = document["paths"]["/auth/verify"]["post"]
    body = resolve(document, wallet["requestBody"]["content"]["application/json"]["schema"][
        "$ref"])
    assert set(body["required"]) == {"address", "message", "signature"}
    assert "/metrics" in document["paths"] and "/auth/logout" in document["paths"]


async def test_real_responses_fit_the_document(start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    document = await get_json(running, "/openapi.json")
    published = await running.http.post("/api/v1/events", json={"events": [
        {"topic": "ticks", "event": "tick", "data": {"n": 1}}]})
    assert response_errors(document, "/api/v1/events", "post", "200",
                           await published.json()) == []
    topics = await get_json(running, "/api/v1/topics")
    assert response_errors(document, "/api/v1/topics", "get", "200", topics) == []
    page = await get_json(running, "/api/v1/topics/ticks/events?since=0")
    assert page["events"] and response_errors(
        document, "/api/v1/topics/{topic}/events", "get", "200", page) == []
    refused = await running.http.post("/api/v1/events", json={
        "topic": "ticks", "event": "tick", "data": {"n": "one"}})
    assert refused.status == 422
    assert response_errors(document, "/api/v1/events", "post", "422",
                           await refused.json()) == []


async def test_publish_bodies_are_typed_per_kind(start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    document = await get_json(running, "/openapi.json")
    validator = Draft202012Validator({**document, "$ref": "#/components/schemas/PublishEvent"})
    good = {"topic": "ticks", "event": "tick", "data": dict(tick(3)[2])}
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, "data": {"n": "three"}}))
    assert list(validator.iter_errors({**good, "event": "nosuch"}))
    block = {"topic": "blocks", "event": "block.finalized",
             "data": {"height": 10, "hash": "0xabc"}}
    assert list(validator.iter_errors(block)) == []
