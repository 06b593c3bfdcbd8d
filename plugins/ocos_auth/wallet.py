"""Wallet login: ed25519 signatures over a Sign-In-With-Solana message (auth method `signature`).

1. `POST /auth/challenge {address}` (or the `challenge` request on a socket) returns the
   SIWS / EIP-4361 text to sign, with a fresh single-use nonce bound to the address.
2. The wallet signs the message's UTF-8 bytes unchanged (Phantom, Solflare `signMessage`).
3. `POST /auth/verify {address, message, signature}` returns a session token (the sessions
   plugin issues it); on a socket, `{type: "auth", method: "signature", ...}` opens the
   same session for that connection, and its ack carries the token.

The signature is checked over the bytes received, and those same bytes are parsed; nothing
the client sends is trusted before the signature verifies. A nonce is consumed as soon as
a valid signature names it, so it stays unusable even when a field then turns out wrong.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from ocos_auth.base58 import b58decode, b58encode
from ocos_auth.common import CredentialFields, Scope, parse_fields, refuse, utcnow
from ocos_auth.sessions import SessionAuth, session_auth
from ocos_hub import AuthMethod, HubError, Operation, Principal, Request, hookimpl
from ocos_hub.app import HUB
from ocos_hub.errors import first_field
from ocos_hub.http_api import read_json
from ocos_hub.protocol import rfc3339

if TYPE_CHECKING:
    from ocos_hub.hub import Hub
    from ocos_hub.session import Session

# A wallet sign-in opens a session: without the sessions plugin the config is refused
# (by `ocos-hub check-config` too).
ocos_requires = ("sessions",)

# Bounds checked before decoding: base58 of 32 bytes is at most 44 characters, of 64 bytes
# at most 88; base64 of 64 bytes is 88. Longer input is refused without arithmetic on it.
MAX_ADDRESS_CHARS = 64
MAX_SIGNATURE_CHARS = 128
MAX_MESSAGE_CHARS = 4096

_LINE = r"[^\n]*"
MESSAGE = re.compile(
    rf"(?P<domain>{_LINE}) wants you to sign in with your Solana account:\n"
    rf"(?P<address>{_LINE})\n\n"
    rf"(?P<statement>{_LINE})\n\n"
    rf"URI: (?P<uri>{_LINE})\n"
    rf"Version: (?P<version>{_LINE})\n"
    rf"Chain ID: (?P<chain_id>{_LINE})\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9]+)\n"
    rf"Issued At: (?P<issued_at>{_LINE})\n"
    rf"Expiration Time: (?P<expiration_time>{_LINE})"
)
# The nonce of a signed message that does not parse, so that it can still be burnt.
NONCE_LINE = re.compile(r"^Nonce: ([A-Za-z0-9]+)$", re.MULTILINE)


class WalletConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str = Field(
        "localhost", pattern=r"^[^\s/]+$", description="The site's host (and port) users sign "
        "in to, first word of the message. Wallets warn when it is not the page's origin.")
    uri: str = Field(
        "http://localhost:8765", pattern=r"^\S+$",
        description="The `URI:` line of the message: the hub's public base URL.")
    chain_id: str = Field(
        "mainnet", pattern=r"^\S+$", description="The `Chain ID:` line of the message.")
    statement: str = Field(
        "Sign in to OCOS Hub.", pattern=r"^[^\r\n]+$",
        description="The human sentence of the message, one line.")
    challenge_ttl: float = Field(
        300.0, gt=0, le=3600, description="Seconds a challenge (its nonce) may be answered.")
    session_ttl: float = Field(
        86400.0, gt=0, description="Lifetime in seconds of the session a login creates.")
    scopes: list[Scope] = Field(
        default_factory=list, description="Scopes every wallet login receives. Anyone can "
        "make a key pair, so grant only what any signed-in user may hold.")
    max_pending: int = Field(
        100_000, ge=1, description="Unanswered challenges kept at once; beyond it new "
        "challenges are refused until some expire.")


@dataclass(frozen=True, slots=True)
class Challenge:
    """What the hub remembers of an issued nonce."""

    address: str
    issued_at: datetime
    expires_at: datetime


class NonceStore(ABC):
    """Issued, unanswered nonces. `consume` must be atomic across every node sharing it."""

    @abstractmethod
    async def issue(self, nonce: str, challenge: Challenge) -> None:
        """Remember a nonce until `challenge.expires_at`."""

    @abstractmethod
    async def consume(self, nonce: str) -> Challenge | None:
        """Take a nonce out: its challenge, or None when unknown, expired or already used."""


class MemoryNonceStore(NonceStore):
    """Nonces of one process, bounded: expired ones are pruned as new ones are issued."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self._pending: dict[str, Challenge] = {}
        self._expiries: list[tuple[datetime, str]] = []

    async def issue(self, nonce: str, challenge: Challenge) -> None:
        now = utcnow()
        while self._expiries and self._expiries[0][0] <= now:
            _, old = heapq.heappop(self._expiries)
            self._pending.pop(old, None)
        if len(self._pending) >= self.max_pending:
            raise HubError("unavailable", "too many sign-in challenges are pending; "
                           "try again shortly")
        self._pending[nonce] = challenge
        heapq.heappush(self._expiries, (challenge.expires_at, nonce))

    async def consume(self, nonce: str) -> Challenge | None:
        challenge = self._pending.pop(nonce, None)
        if challenge is None or challenge.expires_at <= utcnow():
            return None
        return challenge


def decode_address(address: str) -> bytes:
    """The 32-byte ed25519 public key a base58 address names; `ValueError` says why not."""
    if len(address) > MAX_ADDRESS_CHARS:
        raise ValueError(f"an address is at most 44 base58 characters, got {len(address)}")
    try:
        key = b58decode(address)
    except ValueError as exc:
        raise ValueError(f"not base58: {exc}") from None
    if len(key) != 32:
        raise ValueError(f"an ed25519 public key is 32 bytes, this is {len(key)}")
    return key


def decode_signature(signature: str) -> bytes:
    """64 signature bytes from base58 (what Solana tools print) or base64 (browsers)."""
    if len(signature) > MAX_SIGNATURE_CHARS:
        raise ValueError("too long for a 64-byte signature")
    with_padding = signature + "=" * (-len(signature) % 4)
    candidates = []
    try:
        candidates.append(b58decode(signature))
    except ValueError:
        pass
    for alphabet in (b"+/", b"-_"):
        try:
            candidates.append(base64.b64decode(with_padding, altchars=alphabet, validate=True))
        except (binascii.Error, ValueError):
            pass
    for raw in candidates:
        if len(raw) == 64:
            return raw
    raise ValueError("expected 64 bytes as base58 or base64")


def _timestamp(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise refuse(f"message: {name} {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise refuse(f"message: {name} {text!r} has no time zone")
    return moment


class SignatureFields(CredentialFields):
    address: StrictStr = Field(description="The base58 ed25519 public key that signed.")
    message: StrictStr = Field(
        max_length=MAX_MESSAGE_CHARS, description="The challenge's message, exactly as issued.")
    signature: StrictStr = Field(
        description="The ed25519 signature of the message's UTF-8 bytes, base58 or base64.")


class ChallengeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    address: StrictStr = Field(description="The base58 ed25519 public key signing in.")


class ChallengeReply(BaseModel):
    """Step 1's answer: the text to sign and its single-use nonce."""

    message: str = Field(description="The SIWS message to sign, byte for byte.")
    nonce: str = Field(description="The nonce inside the message.")
    expires_at: str = Field(description="When the challenge expires (RFC 3339 UTC).")


class LoginReply(BaseModel):
    """Step 3's answer: a session token for sockets and HTTP calls."""

    token: str = Field(description="The session token; present it as a bearer token.")
    expires_at: str = Field(description="When the session expires (RFC 3339 UTC).")
    principal: dict[str, Any] = Field(description="`{id, method, scopes, expires_at}`.")


class WalletAuth(AuthMethod):
    """The `signature` auth method, and the per-app owner of the nonces."""

    name = "signature"
    credentials_model = SignatureFields

    def __init__(self, config: WalletConfig) -> None:
        self.config = config
        self.sessions: SessionAuth | None = None
        self._nonces: NonceStore | None = None

    @property
    def nonces(self) -> NonceStore:
        """Resolved on first use, once every plugin has started: a shared session store
        that also keeps nonces lets a challenge from one node be answered on another."""
        if self._nonces is None:
            store = self.sessions.store if self.sessions is not None else None
            self._nonces = (store if isinstance(store, NonceStore)
                            else MemoryNonceStore(self.config.max_pending))
        return self._nonces

    def message(self, address: str, nonce: str, issued_at: datetime, expires_at: datetime) -> str:
        """The exact SIWS text of the protocol (Wallet login, step 1)."""
        c = self.config
        return (f"{c.domain} wants you to sign in with your Solana account:\n{address}\n\n"
                f"{c.statement}\n\nURI: {c.uri}\nVersion: 1\nChain ID: {c.chain_id}\n"
                f"Nonce: {nonce}\nIssued At: {rfc3339(issued_at)}\n"
                f"Expiration Time: {rfc3339(expires_at)}")

    async def challenge(self, address: str) -> dict[str, Any]:
        """Issue a nonce for `address`; the reply of step 1."""
        try:
            decode_address(address)
        except ValueError as exc:
            raise HubError("invalid_message", f"address: {exc}", {"field": "address"}) from None
        now = utcnow()
        issued_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as printed
        expires_at = issued_at + timedelta(seconds=self.config.challenge_ttl)
        nonce = b58encode(secrets.token_bytes(16))
        await self.nonces.issue(nonce, Challenge(address, issued_at, expires_at))
        return {"message": self.message(address, nonce, issued_at, expires_at),
                "nonce": nonce, "expires_at": rfc3339(expires_at)}

    async def verify(self, address: str, message: str, signature: str) -> str:
        """Check a signed challenge; return the address that signed in."""
        try:
            key = decode_address(address)
        except ValueError as exc:
            raise refuse(f"address: {exc}", {"field": "address"}) from None
        try:
            raw_signature = decode_signature(signature)
        except ValueError as exc:
            raise refuse(f"signature: {exc}", {"field": "signature"}) from None
        if len(message) > MAX_MESSAGE_CHARS:
            raise refuse("message: longer than any challenge this hub issues")
        try:
            signed = message.encode()
        except UnicodeEncodeError:  # a lone surrogate, from a JSON `\ud800` escape
            raise refuse("message: not valid Unicode text", {"field": "message"}) from None
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(raw_signature, signed)
        except InvalidSignature:
            raise refuse("signature: does not verify with the key of this address over "
                         "this message", {"field": "signature"}) from None

        fields = MESSAGE.fullmatch(message)
        found = fields["nonce"] if fields else None
        if found is None:
            line = NONCE_LINE.search(message)
            found = line.group(1) if line else None
        # Consumed before any field is checked: a signed message with a wrong field burns it.
        challenge = await self.nonces.consume(found) if found else None
        if fields is None:
            raise refuse("message: not the sign-in message format this hub issues")
        expected = {"domain": self.config.domain, "uri": self.config.uri,
                    "chain_id": self.config.chain_id, "version": "1"}
        for name, value in expected.items():
            if fields[name] != value:
                raise refuse(f"message: {name} {fields[name]!r} is not this hub's ({value!r})",
                             {"field": name})
        if fields["address"] != address:
            raise refuse("message: names another address than the key that signed it",
                         {"field": "address"})
        if challenge is None:
            raise refuse("message: nonce unknown, expired or already used; request a new "
                         "challenge", {"field": "nonce"})
        if challenge.address != address:
            raise refuse("message: the nonce was issued to another address", {"field": "nonce"})
        now = utcnow()
        if now < _timestamp(fields["issued_at"], "Issued At"):
            raise refuse("message: Issued At is in the future", {"field": "issued_at"})
        if now >= _timestamp(fields["expiration_time"], "Expiration Time"):
            raise refuse("message: expired", {"field": "expiration_time"})
        return address

    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        fields = parse_fields(self.name, SignatureFields, credentials)
        address = await self.verify(fields.address, fields.message, fields.signature)
        return Principal(
            id=address, method=self.name, scopes=frozenset(self.config.scopes),
            expires_at=utcnow() + timedelta(seconds=self.config.session_ttl),
            attributes={"address": address})

    async def sign_in(self, credentials: Mapping[str, Any]) -> tuple[Principal, dict[str, Any]]:
        """On a socket as over HTTP: a session, whose token the ack carries, so that the
        socket can be logged out (`POST /auth/logout` closes it 4003) and the token reused."""
        fields = parse_fields(self.name, SignatureFields, credentials)
        token, principal = await self.login(fields.address, fields.message, fields.signature)
        return principal, {"token": token, "expires_at": principal.wire()["expires_at"]}

    async def login(self, address: str, message: str, signature: str) -> tuple[str, Principal]:
        """Step 3 over HTTP: verify, then open a session; its token (shown to the client
        once) and principal."""
        if self.sessions is None:
            raise HubError("unavailable", "the hub is still starting")
        await self.verify(address, message, signature)
        return await self.sessions.issue(
            address, self.config.scopes, {"address": address}, ttl=self.config.session_ttl)


def wallet_auth(hub: Hub) -> WalletAuth:
    method = hub.auth_methods.get(WalletAuth.name)
    if not isinstance(method, WalletAuth):
        raise HubError("internal_error", "the wallet plugin is not set up")
    return method


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(await read_json(request))
    except ValidationError as exc:
        field = first_field(exc)
        raise HubError("invalid_message", f"field {field!r}: {exc.errors()[0]['msg']}",
                       {"field": field}) from None


async def http_challenge(request: web.Request) -> web.Response:
    """`POST /auth/challenge {address}` -> `{message, nonce, expires_at}`."""
    body = await _body(request, ChallengeBody)
    return web.json_response(await wallet_auth(request.app[HUB]).challenge(body.address))


async def http_verify(request: web.Request) -> web.Response:
    """`POST /auth/verify {address, message, signature}` -> `{token, expires_at, principal}`."""
    hub = request.app[HUB]
    body = await _body(request, SignatureFields)
    try:
        token, principal = await wallet_auth(hub).login(
            body.address, body.message, body.signature)
    except HubError as exc:
        await hub.authenticated(None, None, exc.code)
        raise
    await hub.authenticated(None, principal, None)
    return web.json_response({
        "token": token,
        "expires_at": principal.wire()["expires_at"],
        "principal": principal.wire(),
    })


class ChallengeRequest(Request):
    address: StrictStr = Field(description="The base58 ed25519 public key signing in.")


class ChallengeOp(Operation):
    """`{type: "challenge", address}`: step 1 on a socket; the ack carries the message."""

    name = "challenge"
    request_model: ClassVar[type[Request]] = ChallengeRequest
    reply_model = ChallengeReply

    async def __call__(self, session: Session, request: ChallengeRequest) -> dict[str, Any]:
        return await wallet_auth(session.hub).challenge(request.address)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return WalletConfig


@hookimpl
def ocos_auth_methods(config: WalletConfig) -> list[AuthMethod]:
    return [WalletAuth(config)]


@hookimpl
def ocos_operations(config: WalletConfig) -> list[Operation]:
    return [ChallengeOp()]


@hookimpl
def ocos_routes(config: WalletConfig) -> list[web.AbstractRouteDef]:
    return [web.post("/auth/challenge", http_challenge), web.post("/auth/verify", http_verify)]


def _json(schema: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


@hookimpl
def ocos_openapi(config: WalletConfig) -> dict[str, Any]:
    error = {"$ref": "#/components/responses/Error"}
    return {
        "/auth/challenge": {"post": {
            "summary": "Wallet login, step 1: the message to sign",
            "description": "Issues a single-use nonce bound to the address, inside the "
            "Sign-In-With-Solana text the wallet signs unchanged.",
            "tags": ["wallet"],
            "requestBody": {"required": True, **_json(ChallengeBody)},
            "responses": {"200": {"description": "The challenge.", **_json(ChallengeReply)},
                          "400": error, "503": error},
        }},
        "/auth/verify": {"post": {
            "summary": "Wallet login, step 3: a session token for a signed challenge",
            "description": "Verifies the signature over the message bytes received, then "
            "the message's domain, URI, chain id, address, nonce and times.",
            "tags": ["wallet"],
            "requestBody": {"required": True, **_json(SignatureFields)},
            "responses": {"200": {"description": "Signed in.", **_json(LoginReply)},
                          "400": error, "401": error},
        }},
    }


@hookimpl
def ocos_startup(hub: Hub, config: WalletConfig) -> Awaitable[None] | None:
    wallet_auth(hub).sessions = session_auth(hub)  # enabled: see `ocos_requires`
    return None
