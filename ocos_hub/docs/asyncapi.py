"""The AsyncAPI 3.0 document of the socket (`GET /asyncapi.json`).

A WebSocket is one channel, so the document has one: `socket`, at `[server] ws_path`,
carrying every message. Operations say who sends what: each request type (`send`, with
its `ack`/`pong` or `error` reply), a `subscribe.<topic>` request per topic with that
topic's `filter` and kinds, the `events.<topic>` the hub then sends, the `welcome` and
the `error` notices. Payload schemas come from the request, reply and event models;
each event message carries its kind's example frame.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from ocos_hub.auth import API_KEY, TOKEN
from ocos_hub.broker import Event
from ocos_hub.docs.catalog import DESCRIPTION, TITLE, Catalog, OperationInfo, model_schemas
from ocos_hub.docs.frames import ErrorFrame, EventFrame, Pong, Welcome
from ocos_hub.docs.topics import EXAMPLE_TS
from ocos_hub.protocol import PROTOCOL
from ocos_hub.topics import Topic

VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"
CHANNEL = "socket"
CORRELATION = {"location": "$message.payload#/id",
               "description": "A reply carries its request's `id`, verbatim."}


@dataclass(frozen=True)
class Endpoint:
    """Where clients reach the hub: `scheme://host[:port]` of its HTTP side."""

    scheme: str
    host: str

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        return cls(scheme if scheme in ("http", "https") else "http", parts.netloc)

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def http(self) -> str:
        return f"{self.scheme}://{self.host}"

    def socket(self, path: str) -> str:
        return f"{'wss' if self.secure else 'ws'}://{self.host}{path}"


def security_schemes(kinds: set[str]) -> dict[str, dict[str, Any]]:
    """Handshake credentials as AsyncAPI security schemes (OpenAPI's are alike)."""
    schemes: dict[str, dict[str, Any]] = {}
    if TOKEN in kinds:
        schemes["bearer"] = {"type": "http", "scheme": "bearer",
                             "description": "A token (JWT or session) in `Authorization`."}
        schemes["tokenQuery"] = {"type": "httpApiKey", "name": "token", "in": "query",
                                 "description": "The same token in the URL, for browsers."}
    if API_KEY in kinds:
        schemes["apiKey"] = {"type": "httpApiKey", "name": "X-API-Key", "in": "header",
                             "description": "An API key."}
        schemes["apiKeyQuery"] = {"type": "httpApiKey", "name": "api_key", "in": "query",
                                  "description": "The same API key in the URL, for browsers."}
    return schemes


def example_frame(topic: Topic, kind: str, offset: int = 1) -> dict[str, Any] | None:
    """The event frame of a kind's example data, as the topic pages show it."""
    example = topic.examples.get(kind)
    if example is None:
        return None
    return Event(topic.name, kind, offset, EXAMPLE_TS, topic.validate_data(kind, example)).wire()


def asyncapi_compatible(schema: Any) -> Any:
    """JSON Schema from pydantic, made valid for AsyncAPI's draft-07 based Schema Object:
    an OpenAPI-style `discriminator` object becomes its property name."""
    if isinstance(schema, dict):
        out = {key: asyncapi_compatible(value) for key, value in schema.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"].get("propertyName", "")
        return out
    if isinstance(schema, list):
        return [asyncapi_compatible(value) for value in schema]
    return schema


class _Builder:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        models: list[type[BaseModel]] = [Welcome, Pong, ErrorFrame, EventFrame]
        for op in catalog.operations:
            models.append(op.request_model)
            if op.reply_model is not None:
                models.append(op.reply_model)
        models += [m.credentials_model for m in catalog.auth_methods if m.credentials_model]
        for topic in catalog.topics:
            models += list(topic.kinds.values())
            if topic.filter_model is not None:
                models.append(topic.filter_model)
        self.refs, self.named = model_schemas(models, SCHEMAS)
        self.messages: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}

    def properties(self, model: type[BaseModel]) -> tuple[dict[str, Any], list[str]]:
        """A model's properties and required names, copied to build a payload around them."""
        ref = self.refs[model].get("$ref", "")
        schema = self.named.get(ref.rsplit("/", 1)[-1], self.refs[model])
        return copy.deepcopy(dict(schema.get("properties", {}))), list(schema.get("required", []))

    def message(self, key: str, payload: dict[str, Any], title: str, summary: str = "",
                examples: list[dict[str, Any]] | None = None, reply: bool = False,
                description: str = "") -> dict[str, str]:
        message: dict[str, Any] = {"name": key, "title": title, "payload": payload}
        if summary:
            message["summary"] = summary
        if description:
            message["description"] = description
        if reply:
            message["correlationId"] = CORRELATION
        if examples:
            message["examples"] = examples
        self.messages[key] = message
        return {"$ref": f"#/channels/{CHANNEL}/messages/{key}"}

    def request_payload(self, op: OperationInfo) -> dict[str, Any]:
        props, required = self.properties(op.request_model)
        props["type"] = {"const": op.name, "description": f"Always `{op.name}`."}
        return {"type": "object", "properties": props,
                "required": list(dict.fromkeys(["type", *required])),
                "additionalProperties": op.request_model.model_config.get("extra") != "forbid"}

    def ack_payload(self, op: OperationInfo) -> dict[str, Any]:
        props: dict[str, Any] = {
            "type": {"const": "ack", "description": "Always `ack`."},
            "id": self.properties(Pong)[0]["id"],
            "op": {"const": op.name, "description": "The request's type."},
        }
        required = ["type", "id", "op"]
        payload: dict[str, Any] = {"type": "object"}
        if op.reply_model is None:
            payload["description"] = "The fields are the plugin's to define."
        else:
            more, more_required = self.properties(op.reply_model)
            props.update(more)
            required += more_required
        payload.update(properties=props, required=required)
        return payload

    def auth_payload(self, op: OperationInfo) -> dict[str, Any]:
        base = self.request_payload(op)
        variants = []
        for method in self.catalog.auth_methods:
            props = {key: value for key, value in base["properties"].items()}
            props["method"] = {"const": method.name, "description": method.summary
                               or f"The `{method.name}` method."}
            required = ["type", "method"]
            closed = method.credentials_model is not None
            if method.credentials_model is not None:
                more, more_required = self.properties(method.credentials_model)
                props.update(more)
                required += more_required
            variants.append({"type": "object", "title": method.name, "properties": props,
                             "required": required, "additionalProperties": not closed})
        return {"oneOf": variants} if variants else base

    def subscribe_payload(self, topic: Topic | None) -> dict[str, Any]:
        op = next(op for op in self.catalog.operations if op.name == "subscribe")
        payload = self.request_payload(op)
        props = payload["properties"]
        topics = [t.name for t in self.catalog.topics]
        if topic is None:
            if topics:
                props["topic"] = {**props["topic"], "enum": topics}
        else:
            props["topic"] = {"const": topic.name, "description": "The topic."}
            props["events"] = {"type": "array", "items": {"enum": list(topic.kinds)},
                               "description": props["events"].get("description", "")}
            props["filter"] = (
                {**self.refs[topic.filter_model], "description": "The topic's filter."}
                if topic.filter_model is not None
                else {"type": "null", "description": "This topic declares no filter fields."})
        if not self.catalog.where:
            props["where"] = {"type": "null",
                              "description": "`where` needs the filters plugin (not enabled)."}
        return payload

    def event_payload(self, topic: Topic, kind: str) -> dict[str, Any]:
        props, required = self.properties(EventFrame)
        props["topic"] = {"const": topic.name, "description": "The topic."}
        props["event"] = {"const": kind, "description": "The event kind."}
        props["data"] = {**self.refs[topic.kinds[kind]], "description": "The event's data."}
        return {"type": "object", "properties": props, "required": required}

    def build(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The channel's messages and the operations."""
        channel = {"$ref": f"#/channels/{CHANNEL}"}
        welcome = self.message("welcome", self.refs[Welcome], "Welcome",
                               "The first frame on every connection.")
        error = self.message(
            "error", self.refs[ErrorFrame], "Error", "A request's failure, or a notice.",
            reply=True, examples=[{"name": "unknown_topic", "payload": {
                "type": "error", "id": 3, "code": "unknown_topic",
                "message": "no topic 'nosuch'", "details": {"topic": "nosuch"}}}],
            description="Error codes and their meaning: docs/protocol.md. A notice has `id` "
            "null: `slow_consumer` (then close 4008), `token_expired` (close 4001 at expiry "
            "unless a fresh `auth` arrives), `forbidden` (a subscription dropped after `auth`).")
        pong = self.message("pong", self.refs[Pong], "Pong", "The reply to `ping`.", reply=True)
        self.operations["welcome"] = {
            "action": "receive", "channel": channel, "title": "Welcome",
            "summary": "Sent once, first, after the handshake.", "messages": [welcome]}
        self.operations["notices"] = {
            "action": "receive", "channel": channel, "title": "Notices",
            "summary": "Errors with `id` null, not tied to a request.", "messages": [error]}

        for op in self.catalog.operations:
            if op.name == "auth":
                payload = self.auth_payload(op)
            elif op.name == "subscribe":
                payload = self.subscribe_payload(None)
            else:
                payload = self.request_payload(op)
            request = self.message(f"request.{op.name}", payload, f"`{op.name}` request",
                                   op.summary, reply=True)
            reply = pong if op.name == "ping" else self.message(
                f"ack.{op.name}", self.ack_payload(op), f"`{op.name}` ack",
                f"Success reply to `{op.name}`.", reply=True)
            self.operations[op.name] = {
                "action": "send", "channel": channel, "title": op.name, "summary": op.summary,
                "messages": [request], "reply": {"channel": channel, "messages": [reply, error]},
                "x-ocos-core": op.core}

        for topic in self.catalog.topics:
            sub = self.message(
                f"request.subscribe.{topic.name}", self.subscribe_payload(topic),
                f"Subscribe to `{topic.name}`", f"`subscribe` with the filter of `{topic.name}`.",
                reply=True, examples=[{"name": "live", "payload": {
                    "type": "subscribe", "id": 1, "topic": topic.name}}])
            self.operations[f"subscribe.{topic.name}"] = {
                "action": "send", "channel": channel, "title": f"Subscribe to {topic.name}",
                "summary": f"Needs `subscribe:{topic.name}`.", "messages": [sub],
                "reply": {"channel": channel, "messages": [
                    {"$ref": f"#/channels/{CHANNEL}/messages/ack.subscribe"}, error]}}
            events = []
            for kind, model in topic.kinds.items():
                frame = example_frame(topic, kind)
                events.append(self.message(
                    f"event.{topic.name}.{kind}", self.event_payload(topic, kind),
                    f"{topic.name} {kind}", _first_line(model.__doc__),
                    examples=[{"name": kind, "payload": frame}] if frame else None))
            description = topic.description
            if topic.visible is not None:
                description += (" Delivery is narrowed per event: a subscriber receives only "
                                "the events this topic lets its principal see.")
            self.operations[f"events.{topic.name}"] = {
                "action": "receive", "channel": channel, "title": f"{topic.name} events",
                "summary": f"Events of `{topic.name}` matching the subscription.",
                "description": description, "messages": events,
                "x-ocos-scope": f"subscribe:{topic.name}"}
        return self.messages, self.operations


def _first_line(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def server_object(catalog: Catalog, endpoint: Endpoint) -> dict[str, Any]:
    """The document's one server: where the socket is, and the credentials it reads."""
    server: dict[str, Any] = {
        "host": endpoint.host,
        "protocol": "wss" if endpoint.secure else "ws",
        "title": TITLE,
        "description": (
            f"Connect to `{endpoint.socket(catalog.ws_path)}` offering the subprotocol "
            f"`{PROTOCOL}`. "
            + ("This hub requires credentials" if catalog.require_auth
               else "Credentials are optional")
            + ": present them at the handshake or later with an `auth` request."),
    }
    schemes = security_schemes(catalog.handshake_kinds())
    if schemes:
        server["security"] = [{"$ref": f"#/components/securitySchemes/{name}"}
                              for name in schemes]
    return server


def asyncapi_document(catalog: Catalog, endpoint: Endpoint) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of a hub reached at `endpoint`."""
    builder = _Builder(catalog)
    messages, operations = builder.build()
    schemes = security_schemes(catalog.handshake_kinds())
    headers: dict[str, Any] = {
        "Sec-WebSocket-Protocol": {"type": "string", "const": PROTOCOL,
                                   "description": "Offer the protocol; it is selected."}}
    query: dict[str, Any] = {}
    if TOKEN in catalog.handshake_kinds():
        headers["Authorization"] = {"type": "string", "pattern": "^Bearer ",
                                    "description": "`Bearer <token>`."}
        query["token"] = {"type": "string", "description": "A token, for browsers."}
    if API_KEY in catalog.handshake_kinds():
        headers["X-API-Key"] = {"type": "string", "description": "An API key."}
        query["api_key"] = {"type": "string", "description": "An API key, for browsers."}
    channel: dict[str, Any] = {
        "address": catalog.ws_path,
        "title": "The hub's WebSocket",
        "description": f"One JSON object per text frame. Requests carry `type` and an optional "
        f"`id` that the reply echoes. The server pings every {catalog.heartbeat:g} s.",
        "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
        "bindings": {"ws": {"method": "GET",
                            "headers": {"type": "object", "properties": headers},
                            "query": {"type": "object", "properties": query},
                            "bindingVersion": "0.1.0"}},
    }
    components: dict[str, Any] = {
        "schemas": asyncapi_compatible(builder.named),
        "messages": asyncapi_compatible(messages),
    }
    if schemes:
        components["securitySchemes"] = schemes
    info_lines = [DESCRIPTION, "",
                  f"Plugins enabled: {', '.join(catalog.enabled) or 'none'}.",
                  "Anonymous connections may: "
                  + (", ".join(f"`{s}`" for s in catalog.anonymous) or "nothing") + "."]
    return {
        "asyncapi": VERSION,
        "info": {"title": TITLE, "version": catalog.version,
                 "description": "\n".join(info_lines),
                 "license": {"name": "Apache-2.0",
                             "url": "https://www.apache.org/licenses/LICENSE-2.0"}},
        "defaultContentType": "application/json",
        "servers": {"hub": server_object(catalog, endpoint)},
        "channels": {CHANNEL: channel},
        "operations": operations,
        "components": components,
    }


def internal_refs(document: Mapping[str, Any]) -> list[str]:
    """Every local `$ref` of a document, to check that each resolves (tests, `--check`)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                found.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found
