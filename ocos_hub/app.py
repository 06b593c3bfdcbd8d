"""`create_app(config)`: one fresh plugin manager, hub and aiohttp application per call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ocos_hub.appkeys import HUB
from ocos_hub.config import HubConfig
from ocos_hub.http_api import ROUTES, errors_as_json
from ocos_hub.hub import Hub
from ocos_hub.middleware import Handler, Middleware
from ocos_hub.plugins import PluginHost
from ocos_hub.ws import websocket_handler

__all__ = ["HUB", "create_app"]


def as_aiohttp(mw: Middleware) -> Any:
    """A middleware plugin's `on_http` stage as an aiohttp middleware."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await mw.on_http(request, handler)

    return middleware


def create_app(config: HubConfig, *, plugins: Sequence[tuple[str, object]] = ()) -> web.Application:
    """Build the hub for `config`. `plugins` adds `(name, plugin)` pairs that need no entry
    point (tests, embedding); they are enabled only when `config` names them too."""
    host = PluginHost(config, plugins)
    hub = Hub(config, host)
    middlewares = [errors_as_json, *(as_aiohttp(mw) for mw in hub.stage("on_http"))]
    app = web.Application(middlewares=middlewares)
    app[HUB] = hub
    app.router.add_get(config.server.ws_path, websocket_handler)
    app.router.add_routes(ROUTES)
    app.router.add_routes(hub.routes)
    app.cleanup_ctx.append(hub.lifecycle)
    app.on_shutdown.append(hub.shutdown)
    return app
