"""Follow an OCOS Hub topic with a filter: every event once, in order, across disconnects.

    python examples/clients/python_client.py ws://127.0.0.1:8765/ws blocks \\
        --filter '{"min_height": 1000}' --events block.new tx.new

It prints one JSON object per line on stdout: the `ack` of each subscribe (with
`recovered` after a reconnect) and each `event`. Connection notes go to stderr.

The algorithm every client needs, written out with aiohttp (`ocos_hub.client.HubClient`
does the same as a library):

1. connect offering the `ocos.v1` subprotocol; the first frame is `welcome`;
2. subscribe; the ack carries the topic's `offset` and `epoch`: keep them;
3. for each event, skip an offset already processed, then remember it;
4. when the connection drops, wait (backoff with jitter), reconnect and subscribe with
   `since: {offset, epoch}`: the hub sends what was missed, then live events, none twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from typing import Any

import aiohttp

PROTOCOL = "ocos.v1"
MIN_BACKOFF, MAX_BACKOFF = 0.2, 10.0


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def emit(frame: dict[str, Any]) -> None:
    print(json.dumps(frame), flush=True)


class SubscriptionRefused(Exception):
    """The hub refused the subscribe itself (unknown topic, bad filter, no scope)."""


async def follow(url: str, topic: str, filter_: dict[str, Any] | None, events: list[str],
                 token: str | None) -> None:
    offset: int | None = None  # the last offset processed, in `epoch`
    epoch: str | None = None
    backoff = MIN_BACKOFF
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.ws_connect(url, protocols=[PROTOCOL], headers=headers) as ws:
                    welcome = await ws.receive_json()
                    if welcome.get("type") != "welcome":
                        raise ConnectionError(f"expected welcome, got {welcome!r}")
                    request: dict[str, Any] = {"type": "subscribe", "id": "sub", "topic": topic}
                    if filter_ is not None:
                        request["filter"] = filter_
                    if events:
                        request["events"] = events
                    if offset is not None:
                        request["since"] = {"offset": offset, "epoch": epoch}
                    await ws.send_json(request)
                    async for msg in ws:
                        if msg.type is not aiohttp.WSMsgType.TEXT:
                            break
                        frame = json.loads(msg.data)
                        kind = frame.get("type")
                        if kind == "ack" and frame.get("op") == "subscribe":
                            backoff = MIN_BACKOFF
                            if offset is None or frame["epoch"] != epoch:
                                # first subscribe, or a new lineage whose offsets start over
                                offset, epoch = frame["offset"], frame["epoch"]
                            emit(frame)
                        elif kind == "event":
                            if offset is not None and frame["offset"] <= offset:
                                continue  # already processed before the reconnect
                            offset = frame["offset"]
                            emit(frame)
                        elif kind == "error" and frame.get("id") == "sub":
                            raise SubscriptionRefused(f"{frame['code']}: {frame['message']}")
                        elif kind == "error":
                            note(f"notice: {frame['code']}: {frame['message']}")
                    note(f"connection closed ({ws.close_code})")
            except (aiohttp.ClientError, ConnectionError, OSError, TimeoutError) as exc:
                note(f"connection failed: {exc!r}")
            delay = backoff * (0.5 + random.random())
            backoff = min(MAX_BACKOFF, backoff * 2)
            note(f"reconnecting in {delay:.1f}s, resuming after offset {offset}")
            await asyncio.sleep(delay)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the hub's socket, e.g. ws://127.0.0.1:8765/ws")
    parser.add_argument("topic")
    parser.add_argument("--filter", type=json.loads, help="the topic's filter object, as JSON")
    parser.add_argument("--events", nargs="*", default=[], help="event kinds to keep")
    parser.add_argument("--token", help="a bearer token (JWT or session)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(follow(args.url, args.topic, args.filter, args.events, args.token))
    except SubscriptionRefused as exc:
        note(f"subscription refused: {exc}")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
