"""Keys, tokens, wallets and handshakes for the auth plugin tests (all generated here)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ocos_auth.base58 import b58encode
from tests.conftest import RunningHub

SECRET = "test-secret-that-is-long-enough-for-hs512-" + "x" * 32
CLOSED = {"access": {"anonymous": []}}  # the fixtures' default opens everything
UPGRADE = {
    "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 300,
                            "scope": "subscribe:ticks"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def hs256(secret: str = SECRET, **over: Any) -> str:
    return jwt.encode(claims(**over), secret, algorithm="HS256")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None) -> str:
    """A token built by hand, as an attacker would: any header, HMAC with any bytes."""
    signing_input = (b64url(json.dumps(header).encode()) + "."
                     + b64url(json.dumps(payload).encode()))
    if hmac_key is None:
        return signing_input + "."
    digest = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(digest)


def public_pem(private: Any) -> bytes:
    return private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


class Wallet:
    """An ed25519 key pair as a Solana wallet holds it."""

    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        self.address = b58encode(raw)

    def sign(self, message: str) -> str:
        return b58encode(self.key.sign(message.encode()))

    def sign_base64(self, message: str) -> str:
        return base64.b64encode(self.key.sign(message.encode())).decode()


async def handshake(running: RunningHub, headers: dict[str, str] | None = None,
                    query: str = "") -> aiohttp.ClientResponse:
    """A raw upgrade request, to see a refused handshake's status and JSON body."""
    path = running.hub.config.server.ws_path + query
    return await running.http.get(path, headers={**UPGRADE, **(headers or {})})


async def refused(running: RunningHub, status: int = 401, **kwargs: Any) -> dict[str, Any]:
    """Assert the handshake is refused before the upgrade; return its JSON body."""
    resp = await handshake(running, **kwargs)
    assert resp.status == status, (resp.status, await resp.text())
    body: dict[str, Any] = await resp.json()
    assert "Traceback" not in json.dumps(body)
    return body


async def challenge(running: RunningHub, address: str) -> dict[str, Any]:
    resp = await running.http.post("/auth/challenge", json={"address": address})
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def verify(running: RunningHub, body: dict[str, Any]) -> aiohttp.ClientResponse:
    return await running.http.post("/auth/verify", json=body)


async def sign_in(running: RunningHub, wallet: Wallet) -> dict[str, Any]:
    """The whole HTTP wallet login; `{token, expires_at, principal}`."""
    message = (await challenge(running, wallet.address))["message"]
    resp = await verify(running, {"address": wallet.address, "message": message,
                                  "signature": wallet.sign(message)})
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]
