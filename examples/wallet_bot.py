#!/usr/bin/env python3
"""A bot that signs in to OCOS Hub with an ed25519 key (wallet login) and prints events.

    python examples/wallet_bot.py --hub http://127.0.0.1:8765 --key bot.pem ticks blocks

The hub needs the `sessions` and `wallet` plugins, and `[plugins.wallet] scopes` granting
`subscribe:<topic>` for the topics asked. The key file (PEM, PKCS#8) is created with mode
0600 when missing; the base58 form of its public key is the bot's address, the same as a
Solana wallet's. When the hub warns that the session expires soon (`token_expired`), the bot
signs in again and re-authenticates the open socket, keeping its subscriptions.

Needs only aiohttp and cryptography, both OCOS Hub dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana writes keys and signatures."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(ALPHABET[rest])
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + "".join(reversed(digits))


def load_key(path: Path) -> Ed25519PrivateKey:
    """Read the bot's key, or create one (readable by its owner only)."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SystemExit(f"{path}: not an ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def address_of(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return b58encode(raw)


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json(content_type=None)
    if resp.status != 200:
        raise RuntimeError(f"{resp.method} {resp.url.path}: {resp.status} {body.get('code')}: "
                           f"{body.get('message')}")
    return body


async def sign_in(http: aiohttp.ClientSession, hub: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Challenge, sign the message's exact bytes, verify: `{token, expires_at, principal}`."""
    address = address_of(key)
    async with http.post(f"{hub}/auth/challenge", json={"address": address}) as resp:
        challenge = await _json(resp)
    signature = b58encode(key.sign(challenge["message"].encode()))
    body = {"address": address, "message": challenge["message"], "signature": signature}
    async with http.post(f"{hub}/auth/verify", json=body) as resp:
        return await _json(resp)


async def run(
    hub: str, key: Ed25519PrivateKey, topics: Sequence[str], *, ws_path: str = "/ws",
    limit: int | None = None, out: Callable[[str], None] = print,
) -> int:
    """Sign in, subscribe to `topics`, print events (`limit` of them, or until closed)."""
    hub = hub.rstrip("/")
    ws_url = "ws" + hub[4:] + ws_path if hub.startswith("http") else hub + ws_path
    async with aiohttp.ClientSession() as http:
        login = await sign_in(http, hub, key)
        out(f"signed in as {login['principal']['id']} until {login['expires_at']}")
        headers = {"Authorization": f"Bearer {login['token']}"}
        async with http.ws_connect(ws_url, headers=headers, protocols=("ocos.v1",)) as ws:
            welcome = await ws.receive_json()
            out(f"connected: session {welcome['session']}, scopes "
                f"{welcome['principal']['scopes']}")
            for number, topic in enumerate(topics, 1):
                await ws.send_json({"type": "subscribe", "id": number, "topic": topic})
            seen = 0
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                frame = json.loads(msg.data)
                kind = frame["type"]
                if kind == "event":
                    out(f"{frame['topic']} #{frame['offset']} {frame['event']} "
                        f"{json.dumps(frame['data'])}")
                    seen += 1
                    if limit is not None and seen >= limit:
                        break
                elif kind == "ack" and frame["op"] == "subscribe":
                    out(f"subscribed to {frame['topic']} at offset {frame['offset']}")
                elif kind == "error" and frame.get("code") == "token_expired":
                    login = await sign_in(http, hub, key)
                    await ws.send_json({"type": "auth", "id": "refresh", "method": "session",
                                        "token": login["token"]})
                    out(f"session renewed until {login['expires_at']}")
                elif kind == "error":
                    out(f"error {frame['code']}: {frame['message']}")
            if ws.close_code is not None:
                out(f"closed by the hub: {ws.close_code}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topics", nargs="+", help="topics to subscribe to")
    parser.add_argument("--hub", default="http://127.0.0.1:8765", help="the hub's base URL")
    parser.add_argument("--ws-path", default="/ws", help="the hub's WebSocket path")
    parser.add_argument("--key", type=Path, default=Path("wallet-bot.pem"),
                        help="ed25519 private key (PEM); created when missing")
    parser.add_argument("--limit", type=int, help="stop after this many events")
    args = parser.parse_args(argv)
    key = load_key(args.key)
    print(f"address {address_of(key)}", flush=True)
    try:
        return asyncio.run(run(args.hub, key, args.topics, ws_path=args.ws_path,
                               limit=args.limit, out=lambda line: print(line, flush=True)))
    except (RuntimeError, aiohttp.ClientError) as exc:
        print(f"wallet_bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
