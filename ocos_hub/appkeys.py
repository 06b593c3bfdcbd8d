"""Typed application state, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ocos_hub.auth import Principal
    from ocos_hub.hub import Hub

HUB: web.AppKey[Hub] = web.AppKey("hub")
# Who made an HTTP request (None: anonymous); set once `Hub.identify` checked it, so that
# middleware wrapping the handler (audit, logging) can name the principal.
PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
