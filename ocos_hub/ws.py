"""The WebSocket endpoint: handshake checks, the welcome, and each connection's read loop."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, hdrs, web
from aiohttp.http_websocket import ws_ext_gen
from aiohttp.web_request import BaseRequest
from multidict import CIMultiDict

from ocos_hub import __version__
from ocos_hub.appkeys import HUB
from ocos_hub.errors import HubError
from ocos_hub.protocol import PROTOCOL, Close
from ocos_hub.session import Session

log = logging.getLogger("ocos_hub.ws")


class SharedFrameResponse(web.WebSocketResponse):
    """Always answers permessage-deflate with server_no_context_takeover (RFC 7692 allows it
    unasked), so a message compressed once is valid for every receiver."""

    def _handshake(self, request: BaseRequest) -> tuple[CIMultiDict[str], str | None, int, bool]:
        headers, protocol, compress, notakeover = super()._handshake(request)
        if compress and not notakeover:
            headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = ws_ext_gen(
                compress=compress, isserver=True, server_notakeover=True)
            notakeover = True
        return headers, protocol, compress, notakeover


def offered_protocols(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    """Admit the connection, then read its requests one at a time, so that replies leave in
    request order."""
    session = await admit(request)
    hub, ws = session.hub, session.ws
    loop = asyncio.get_running_loop()
    try:
        for mw in hub.stage("on_connect"):
            await mw.on_connect(session)
        # the read loop is inline: one coroutine frame less per connection
        while not session.closing:
            msg = await ws.receive()
            session.last_seen = loop.time()
            if msg.type is WSMsgType.TEXT:
                await session.handle_text(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await session.close(Close.BINARY, "binary frames are not accepted")
            elif msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                continue
            else:  # CLOSE, CLOSING, CLOSED, ERROR (aiohttp already closed 1009 for oversize)
                break
        else:
            # The server started closing (slow consumer, expiry, revocation, rate limit): let
            # that close handshake finish with its code before aiohttp closes 1000.
            await session.close(Close.NORMAL, "")
    finally:
        hub.sessions.discard(session)
        session.mark_closed(ws.close_code)
        if session.close_code not in (None, Close.NORMAL, Close.SHUTDOWN):
            hub.stats.dropped_connections += 1
        for mw in hub.stage("on_disconnect"):
            await mw.on_disconnect(session, session.close_code)
    return ws


async def admit(request: web.Request) -> Session:
    """Run the handshake checks, upgrade, and send the welcome; raises a refusal."""
    hub = request.app[HUB]
    offered = offered_protocols(request)
    if offered and PROTOCOL not in offered:
        raise HubError("unsupported_protocol", f"this hub speaks {PROTOCOL!r} only",
                       {"offered": offered, "supported": [PROTOCOL]})
    for mw in hub.stage("on_handshake"):
        await mw.on_handshake(request)
    principal = await hub.identify(request)
    if hub.shutting_down:
        raise HubError("unavailable", "the hub is shutting down")
    for mw in hub.stage("on_admit"):
        await mw.on_admit(request, principal)

    server = hub.config.server
    ws = SharedFrameResponse(
        protocols=(PROTOCOL,) if offered else (),
        autoping=False,
        max_msg_size=server.max_message_bytes,
        compress=hub.compression is not None,
    )
    await ws.prepare(request)
    session = Session(hub, ws, request, principal)
    hub.sessions.add(session)
    hub.stats.connections_total += 1
    session.reply({
        "type": "welcome",
        "session": session.id,
        "protocol": PROTOCOL,
        "server": f"ocos-hub/{__version__}",
        "heartbeat": server.heartbeat,
        "topics": hub.visible_topics(session.scopes),
        "principal": principal.wire() if principal else None,
        "limits": {
            "max_message_bytes": server.max_message_bytes,
            "max_subscriptions": server.max_subscriptions,
            **hub.welcome_limits,
        },
    })
    return session
