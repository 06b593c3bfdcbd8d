"""A hub with most first-party plugins and a third-party-like plugin, for the documents."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, Field

from ocos_hub import Operation, Request, hookimpl
from ocos_hub.session import Session
from tests.conftest import RunningHub, StartHub

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = Path(__file__).with_name("data") / "asyncapi-3.0.0.json"
ENABLED = ["ticks", "blocks", "governance", "dao", "liquidity", "nft", "identity", "analytics",
           "jwt", "apikey", "sessions", "wallet", "history", "filters", "metrics", "extras"]
SECRET = "s" * 32
OVERRIDES = {"plugins": {"jwt": {"secret": SECRET}}}


class EchoRequest(Request):
    text: str = Field(max_length=100, description="What to echo.")


class EchoReply(BaseModel):
    text: str = Field(description="The same text.")


class Echo(Operation):
    """Answers with the text it was sent."""

    name = "echo"
    request_model: ClassVar[type[Request]] = EchoRequest
    reply_model = EchoReply

    async def __call__(self, session: Session, request: EchoRequest) -> dict[str, Any]:
        return {"text": request.text}


class Shout(Operation):
    """An op that declares no reply model: its ack is open."""

    name = "shout"

    async def __call__(self, session: Session, request: Request) -> dict[str, Any]:
        return {"loud": True}


async def echo_route(request: web.Request) -> web.Response:
    """Echo the `text` query parameter."""
    return web.json_response({"text": request.query.get("text", "")})


async def plain_route(request: web.Request) -> web.Response:
    """A route described by its docstring only.

    The rest of the docstring becomes the description.
    """
    return web.json_response({"ok": True, "id": request.match_info["item"]})


class ExtrasPlugin:
    """Everything a third party may add that the documents should show."""

    @hookimpl
    def ocos_operations(self, config: Any) -> list[Operation]:
        return [Echo(), Shout()]

    @hookimpl
    def ocos_routes(self, config: Any) -> list[web.AbstractRouteDef]:
        return [web.get("/api/v1/echo", echo_route),
                web.get("/api/v1/plain/{item}", plain_route)]

    @hookimpl
    def ocos_openapi(self, config: Any) -> dict[str, Any]:
        return {"/api/v1/echo": {"get": {
            "summary": "Echo the text",
            "parameters": [{"name": "text", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The text.",
                                  "content": {"application/json": {"schema": EchoReply}}},
                          "400": {"$ref": "#/components/responses/Error"}},
        }}}


async def full_hub(start_hub: StartHub, **overrides: Any) -> RunningHub:
    data: dict[str, Any] = json.loads(json.dumps(OVERRIDES))
    for key, value in overrides.items():
        data.setdefault(key, {}).update(value)
    return await start_hub(data, plugins=[("extras", ExtrasPlugin())], enabled=ENABLED)


async def get_json(running: RunningHub, path: str, **kwargs: Any) -> dict[str, Any]:
    response = await running.http.get(path, **kwargs)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def resolve(document: Mapping[str, Any], ref: str) -> Any:
    """The node a local `$ref` (`#/a/b`) names; KeyError when it names nothing."""
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node
