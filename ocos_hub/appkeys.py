"""Typed application state, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ocos_hub.hub import Hub

HUB: web.AppKey[Hub] = web.AppKey("hub")
