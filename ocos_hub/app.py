"""`create_app(config)`: one fresh plugin manager, hub and aiohttp application per call.

`app_from_env` is the same for process managers that import an app factory (gunicorn).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from ocos_hub.appkeys import HUB
from ocos_hub.config import HubConfig, load_config
from ocos_hub.docs.web import ROUTES as DOC_ROUTES
from ocos_hub.http_api import ROUTES, errors_as_json
from ocos_hub.hub import Hub
from ocos_hub.middleware import Handler, Middleware
from ocos_hub.plugins import PluginHost
from ocos_hub.ws import websocket_handler

__all__ = ["HUB", "app_from_env", "create_app"]


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
    if config.server.docs:
        app.router.add_routes(DOC_ROUTES)
    app.router.add_routes(hub.routes)
    app.cleanup_ctx.append(hub.lifecycle)
    app.on_shutdown.append(hub.shutdown)
    return app


def serving(app: web.Application) -> web.Application:
    """`app` set up to be a process's only app: what exists once it has started is frozen
    out of the garbage collector (`freeze_startup_objects`)."""
    app.on_startup.append(freeze_startup_objects)
    return app


async def freeze_startup_objects(app: web.Application) -> None:
    """Take what exists once the hub has started (modules, plugins, config: most of the
    objects of a young process) out of the garbage collector's full collections. It lives
    as long as the process; walked again by every full collection, it would stall every
    connection's writes for tens of milliseconds each time."""
    gc.collect()
    gc.freeze()


async def app_from_env() -> web.Application:
    """The hub configured by the environment, for `gunicorn ocos_hub.app:app_from_env
    --worker-class aiohttp.GunicornWebWorker` (aiohttp's worker awaits the factory).

    `OCOS_HUB_CONFIG` names the TOML file, `OCOS_HUB_PROFILE` a built-in profile (`demo`);
    `OCOS_HUB__SECTION__KEY` variables override single values, as for `ocos-hub serve`.
    gunicorn binds the sockets, so `[server] host` and `port` are not used.
    """
    return serving(create_app(load_config(os.environ.get("OCOS_HUB_CONFIG") or None,
                                          profile=os.environ.get("OCOS_HUB_PROFILE") or None)))
