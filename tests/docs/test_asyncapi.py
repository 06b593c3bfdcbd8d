"""GET /asyncapi.json: a valid AsyncAPI 3.0 document that agrees with the running hub.

Validity is checked against the official AsyncAPI 3.0.0 JSON Schema (vendored in data/);
agreement by validating real frames of a real connection against the document's message
payloads.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from ocos_hub.docs.asyncapi import internal_refs
from tests.conftest import StartHub
from tests.docs.helpers import ASYNCAPI_SCHEMA, full_hub, get_json, resolve


@pytest.fixture(scope="module")
def asyncapi_validator() -> Draft7Validator:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def errors(validator: Draft7Validator, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(document)]


def payload_errors(document: dict[str, Any], message: str, frame: Any) -> list[str]:
    """Why `frame` does not fit the payload of the document's message `message`."""
    validator = Draft202012Validator(
        {**document, "$ref": f"#/components/messages/{message}/payload"})
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(frame)]


async def test_document_is_valid_asyncapi_3(start_hub: StartHub,
                                            asyncapi_validator: Draft7Validator) -> None:
    running = await full_hub(start_hub)
    document = await get_json(running, "/asyncapi.json")
    assert document["asyncapi"] == "3.0.0"
    assert errors(asyncapi_validator, document) == []
    unresolved = []
    for ref in internal_refs(document):
        try:
            resolve(document, ref)
        except KeyError:
            unresolved.append(ref)
    assert unresolved == []


async def test_the_official_schema_refuses_a_broken_document(
        start_hub: StartHub, asyncapi_validator: Draft7Validator) -> None:
    """The validation has teeth: a document the specification forbids fails it."""
    running = await start_hub()
    document = await get_json(running, "/asyncapi.json")
    broken = copy.deepcopy(document)
    broken["operations"]["subscribe"]["action"] = "publish"  # AsyncAPI 2 vocabulary
    del broken["info"]["version"]
    problems = errors(asyncapi_validator, broken)
    assert any("version" in p for p in problems) and any("action" in p for p in problems)


async def test_socket_subprotocol_and_every_request_and_topic(start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    document = await get_json(running, "/asyncapi.json", headers={"X-Forwarded-Proto": "https"})
    [server] = document["servers"].values()
    assert server["protocol"] == "wss" and server["host"] == running.http.host + ":" + str(
        running.http.port)
    assert "ocos.v1" in server["description"]
    channel = document["channels"]["socket"]
    assert channel["address"] == "/ws"
    binding = channel["bindings"]["ws"]
    assert binding["headers"]["properties"]["Sec-WebSocket-Protocol"]["const"] == "ocos.v1"
    assert set(binding["query"]["properties"]) == {"token", "api_key"}
    assert {"bearer", "tokenQuery", "apiKey", "apiKeyQuery"} <= set(
        document["components"]["securitySchemes"])

    operations = document["operations"]
    hub = running.hub
    for name in hub.operations:  # core and extension requests, from their request models
        assert operations[name]["action"] == "send", name
        assert f"request.{name}" in channel["messages"]
    history = document["components"]["messages"]["request.history"]["payload"]
    assert {"topic", "since", "before", "limit"} <= set(history["properties"])
    assert history["properties"]["type"]["const"] == "history"
    auth = document["components"]["messages"]["request.auth"]["payload"]
    assert {variant["properties"]["method"]["const"] for variant in auth["oneOf"]} == {
        "jwt", "apikey", "session", "signature"}

    messages = document["components"]["messages"]
    for topic in hub.topics.values():
        receive = operations[f"events.{topic.name}"]
        assert receive["action"] == "receive"
        assert len(receive["messages"]) == len(topic.kinds)
        for kind in topic.kinds:
            message = messages[f"event.{topic.name}.{kind}"]
            assert message["payload"]["properties"]["event"]["const"] == kind
            if kind in topic.examples:
                [example] = message["examples"]
                assert example["payload"]["event"] == kind
                assert payload_errors(document, f"event.{topic.name}.{kind}",
                                      example["payload"]) == []
        subscribe = messages[f"request.subscribe.{topic.name}"]["payload"]["properties"]
        assert subscribe["topic"]["const"] == topic.name
        assert subscribe["events"]["items"]["enum"] == list(topic.kinds)
        if topic.filter_model is not None:
            filter_ = resolve(document, subscribe["filter"]["$ref"])
            assert set(filter_["properties"]) == set(topic.filter_model.model_fields)


def expect(document: dict[str, Any], message: str, frame: dict[str, Any]) -> dict[str, Any]:
    assert payload_errors(document, message, frame) == [], (message, frame)
    return frame


async def test_real_frames_fit_the_documented_messages(start_hub: StartHub) -> None:
    running = await full_hub(start_hub)
    document = await get_json(running, "/asyncapi.json")
    client = await running.connect(protocols=["ocos.v1"])
    expect(document, "welcome", client.welcome)

    sent: list[tuple[str, dict[str, Any]]] = [
        ("request.subscribe.ticks", {"type": "subscribe", "id": 1, "topic": "ticks",
                                     "filter": {"min_n": 2}, "events": ["tick"]}),
        ("request.ping", {"type": "ping", "id": "p"}),
        ("request.history", {"type": "history", "id": 3, "topic": "ticks", "limit": 5}),
        ("request.topics", {"type": "topics", "id": 4}),
        ("request.publish", {"type": "publish", "id": 5, "topic": "ticks", "event": "tick",
                             "data": {"n": 7}}),
        ("request.challenge", {"type": "challenge", "id": 6,
                               "address": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"}),
        ("request.echo", {"type": "echo", "id": 7, "text": "hi"}),
        ("request.unsubscribe", {"type": "unsubscribe", "id": 8, "topic": "ticks"}),
    ]
    replies = {"request.ping": "pong"}
    events = []
    for message, request in sent:
        assert payload_errors(document, message, request) == [], request
        await client.ws.send_json(request)
        reply = await client.recv()
        if reply["type"] == "event":  # the publish's own event, after the publish's ack
            events.append(expect(document, "event.ticks.tick", reply))
            reply = await client.recv()
        op = request["type"]
        expect(document, replies.get(message, f"ack.{op}"), reply)
        assert reply["id"] == request["id"]
    assert [event["data"]["n"] for event in events] == [7]

    await client.ws.send_json({"type": "subscribe", "id": 9, "topic": "nosuch"})
    expect(document, "error", await client.recv())
    await client.ws.send_json({"type": "subscribe", "id": 10, "topic": "ticks",
                               "since": {"offset": 0, "epoch": "x"}})
    expect(document, "ack.subscribe", await client.recv())
    # a request the hub refuses, the documented schema refuses too
    assert payload_errors(document, "request.subscribe",
                          {"type": "subscribe", "topic": "ticks", "bogus": 1})
    assert payload_errors(document, "request.subscribe.ticks",
                          {"type": "subscribe", "topic": "ticks", "filter": {"bogus": 1}})


async def test_documents_follow_the_enabled_plugins(start_hub: StartHub) -> None:
    """Nothing is hard-wired: a hub with only the core documents only the core."""
    running = await start_hub(enabled=())
    document = await get_json(running, "/asyncapi.json")
    assert set(document["operations"]) == {"welcome", "notices", "subscribe", "unsubscribe",
                                           "ping", "auth", "publish"}
    assert "securitySchemes" not in document["components"]
    assert not any(key.startswith("event.") for key in document["components"]["messages"])
    full = await get_json(await full_hub(start_hub), "/asyncapi.json")
    assert {f"events.{name}" for name in ("ticks", "blocks", "identity")} <= set(
        full["operations"])
    assert {"history", "topics", "challenge", "echo"} <= set(full["operations"])
