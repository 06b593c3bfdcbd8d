"""JSON Web Tokens (auth method `jwt`), verified with PyJWT.

Only the algorithms the operator allows are accepted, and each is verified with the key of
its own family: HMAC tokens with `secret`, RS256/ES256/EdDSA tokens with the configured
public key (or the JWKS key named by `kid`, from a file or the identity provider's URL) of
the matching type. So `alg: none` and the HS/RS confusion (an RSA public key used as an
HMAC secret) fail before any signature math.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictStr,
    model_validator,
)

from ocos_auth.common import CredentialFields, parse_fields, refuse
from ocos_hub import AuthMethod, HubError, Principal, hookimpl
from ocos_hub.auth import TOKEN
from ocos_hub.config import Secret

log = logging.getLogger("ocos_auth.jwt")

Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"]
_HS256: list[Algorithm] = ["HS256"]
# RFC 7518 3.2: an HMAC key at least as long as the hash output.
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
KeySet = dict[str | None, PublicKey]

# A token naming a `kid` the key set lacks refetches `jwks_url` at most this often (seconds):
# a rotation reaches the hub at once, a flood of made-up key ids does not reach the provider.
MIN_REFETCH = 10.0
FETCH_TIMEOUT = 5.0
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")

# Three base64url segments: anything else is left to the other methods (session tokens).
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _fits(alg: str, key: Any) -> bool:
    """Whether `key` is of the type `alg` verifies with (the confusion guard)."""
    if alg == "RS256":
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    if alg == "ES256":
        return isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    if alg == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey)
    return False


class JwtConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithms: list[Algorithm] = Field(
        default_factory=lambda: list(_HS256), min_length=1,
        description="Algorithms accepted in a token's `alg` header; any other (`none` "
        "included) is refused. HS256/384/512 need `secret`; RS256, ES256 and EdDSA need "
        "`public_key_file`, `jwks_file` or `jwks_url`.")
    secret: Secret | None = Field(
        None, description="HMAC key of HS* tokens, at least as many bytes as the hash (32 "
        "for HS256). Write `env:NAME` or `file:/path` to keep it out of the config file.")
    public_key_file: Path | None = Field(
        None, description="PEM public key (RSA >= 2048 bits, P-256 or Ed25519) verifying "
        "RS256/ES256/EdDSA tokens.")
    jwks_file: Path | None = Field(
        None, description="JSON Web Key Set of public keys, chosen by the token's `kid` "
        "(for key rotation); instead of `public_key_file`.")
    jwks_url: AnyHttpUrl | None = Field(
        None, description="The identity provider's JSON Web Key Set URL (its `jwks_uri`), "
        "fetched when a token first needs it, again every `jwks_refresh` seconds, and when "
        "a token names a `kid` it lacks (at most every 10 s). https, or http to a loopback "
        "address. Instead of `public_key_file` or `jwks_file`.")
    jwks_refresh: float = Field(
        600.0, ge=10, le=86_400, description="Seconds between fetches of `jwks_url`.")
    audience: str | list[StrictStr] | None = Field(
        None, description="Required `aud`: a token must name this audience (or one of "
        "these). Unset: `aud` is not checked.")
    issuer: str | None = Field(
        None, description="Required `iss`. Unset: `iss` is not checked.")
    leeway: float = Field(
        5.0, ge=0, le=300, description="Seconds of clock skew tolerated on `exp`, `nbf` "
        "and `iat`.")

    _public: PublicKey | None = PrivateAttr(None)
    _jwks: dict[str | None, PublicKey] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _load_keys(self) -> JwtConfig:
        if self.audience == []:
            raise ValueError("audience: name at least one, or leave it unset")
        hmac_algs = [alg for alg in self.algorithms if alg in HMAC_KEY_BYTES]
        asymmetric = [alg for alg in self.algorithms if alg not in HMAC_KEY_BYTES]
        if hmac_algs and self.secret is None:
            raise ValueError(f"secret: required for {', '.join(hmac_algs)}")
        if self.secret is not None:
            if not hmac_algs:
                raise ValueError("secret: set, but no HS* algorithm is allowed")
            if self.secret.lstrip().startswith(("-----BEGIN", "ssh-", "{")):
                raise ValueError("secret: looks like a public key; asymmetric keys go in "
                                 "public_key_file, jwks_file or jwks_url")
            need = max(HMAC_KEY_BYTES[alg] for alg in hmac_algs)
            if len(self.secret.encode()) < need:
                raise ValueError(f"secret: at least {need} bytes for {', '.join(hmac_algs)}")
        sources = [name for name in ("public_key_file", "jwks_file", "jwks_url")
                   if getattr(self, name) is not None]
        if len(sources) > 1:
            raise ValueError(f"give one of public_key_file, jwks_file and jwks_url, not "
                             f"{' and '.join(sources)}")
        if asymmetric and not sources:
            raise ValueError(f"public_key_file, jwks_file or jwks_url: required for "
                             f"{', '.join(asymmetric)}")
        if sources and not asymmetric:
            raise ValueError("a public key is configured but no RS256/ES256/EdDSA algorithm "
                             "is allowed")
        url = self.jwks_url
        if url is not None and url.scheme != "https" and url.host not in LOOPBACK_HOSTS:
            raise ValueError("jwks_url: https is required (http only to a loopback address): "
                             "keys fetched in the clear could be replaced on the way")
        if self.public_key_file is not None:
            self._public = self._read_pem(self.public_key_file)
            if not any(_fits(alg, self._public) for alg in asymmetric):
                raise ValueError(f"public_key_file: a {type(self._public).__name__} verifies "
                                 f"none of {', '.join(asymmetric)}")
        if self.jwks_file is not None:
            self._jwks = self._read_jwks(self.jwks_file)
        return self

    @staticmethod
    def _read_pem(path: Path) -> PublicKey:
        try:
            key = load_pem_public_key(path.expanduser().read_bytes())
        except OSError as exc:
            raise ValueError(f"public_key_file: cannot read {path}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"public_key_file: {path} is not a PEM public key ({exc})") from None
        if not isinstance(key, PublicKey):
            raise ValueError(f"public_key_file: unsupported key type {type(key).__name__}")
        return key

    @staticmethod
    def _read_jwks(path: Path) -> KeySet:
        try:
            document = json.loads(path.expanduser().read_text())
        except OSError as exc:
            raise ValueError(f"jwks_file: cannot read {path}: {exc.strerror}") from None
        except ValueError:
            raise ValueError(f"jwks_file: {path} is not a JSON Web Key Set") from None
        return parse_jwks(document, f"jwks_file: {path}")

    def key_for(self, alg: str, kid: Any, fetched: KeySet | None = None) -> Any:
        """The key verifying a token with this header, or a refusal saying why none does.
        `fetched` is the key set of `jwks_url`, when it is the source."""
        if alg in HMAC_KEY_BYTES:
            return (self.secret or "").encode()
        jwks = self._jwks if fetched is None else fetched
        if self._public is not None:
            key = self._public
        elif kid is None and len(jwks) == 1:
            key = next(iter(jwks.values()))
        elif isinstance(kid, str) and kid in jwks:
            key = jwks[kid]
        else:
            raise refuse(f"JWT key id {kid!r} is not in the configured key set")
        if not _fits(alg, key):
            raise refuse(f"JWT algorithm {alg} does not match the configured key")
        return key


def parse_jwks(document: Any, source: str) -> KeySet:
    """The public keys of a JSON Web Key Set document, by `kid`; `source` names it in errors."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{source} is not a JSON Web Key Set")
    keys: KeySet = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: keys[{index}] is not an object")
        if entry.get("kty") == "oct" or "d" in entry:
            raise ValueError(f"{source}: keys[{index}] is secret key material; publish "
                             "only public keys (an HMAC key goes in `secret`)")
        try:
            key = jwt.PyJWK(entry).key
        except jwt.PyJWTError as exc:
            raise ValueError(f"{source}: keys[{index}]: {exc}") from None
        if not isinstance(key, PublicKey):
            raise ValueError(f"{source}: keys[{index}]: unsupported key type")
        keys[entry.get("kid")] = key
    if not keys:
        raise ValueError(f"{source} holds no keys")
    return keys


class RemoteKeySet:
    """The key set at `jwks_url`: fetched when a token first needs it, again every
    `refresh` seconds, and for a `kid` it lacks at most every `MIN_REFETCH` seconds. A
    failed fetch keeps the keys it had; with none yet, tokens are refused as `unavailable`."""

    def __init__(self, url: str, refresh: float) -> None:
        self.url = url
        self.refresh = refresh
        self._keys: KeySet = {}
        self._tried_at: float | None = None
        self._error = ""
        self._lock = asyncio.Lock()

    async def keys(self, kid: Any) -> KeySet:
        tried = self._tried_at
        since = None if tried is None else time.monotonic() - tried
        lacks = not (kid in self._keys or (kid is None and len(self._keys) == 1))
        if since is None or since >= self.refresh or (lacks and since >= MIN_REFETCH):
            await self._fetch(tried)
        if not self._keys:
            raise HubError("unavailable", f"the identity provider's keys could not be "
                           f"fetched from {self.url}: {self._error}")
        return self._keys

    async def _fetch(self, tried: float | None) -> None:
        async with self._lock:
            if self._tried_at != tried:
                return  # fetched by another request meanwhile
            self._tried_at = time.monotonic()
            try:
                timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
                async with aiohttp.ClientSession(timeout=timeout) as http, \
                        http.get(self.url) as response:
                    response.raise_for_status()
                    document = await response.json(content_type=None)
                self._keys = parse_jwks(document, f"jwks_url {self.url}")
                self._error = ""
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._error = str(exc) or type(exc).__name__
                log.warning("JWKS fetch from %s failed (%s); keeping %d known key(s)",
                            self.url, self._error, len(self._keys))


class JwtFields(CredentialFields):
    token: StrictStr = Field(description="A JSON Web Token from the identity provider.")


class JwtAuth(AuthMethod):
    name = "jwt"
    credentials_model = JwtFields
    handshake_credentials = (TOKEN,)

    def __init__(self, config: JwtConfig) -> None:
        self.config = config
        self._require = ["exp", "sub"] + (["iss"] if config.issuer else []) + (
            ["aud"] if config.audience else [])
        self.remote = (RemoteKeySet(str(config.jwks_url), config.jwks_refresh)
                       if config.jwks_url is not None else None)

    async def verify(self, token: str) -> Principal:
        """Verify a token completely; every failure is `invalid_credentials` (`unavailable`
        while the keys of `jwks_url` cannot be fetched)."""
        config = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise refuse("malformed JWT: its header is not base64url JSON") from None
        alg = header.get("alg")
        if alg not in config.algorithms:
            raise refuse(f"JWT algorithm {alg!r} is not accepted here (accepted: "
                         f"{', '.join(config.algorithms)})")
        fetched = None
        if self.remote is not None and alg not in HMAC_KEY_BYTES:
            fetched = await self.remote.keys(header.get("kid"))
        key = config.key_for(alg, header.get("kid"), fetched)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=config.audience, issuer=config.issuer,
                leeway=config.leeway,
                options={"require": self._require, "verify_aud": config.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise refuse("JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise refuse("JWT is not valid yet (nbf or iat is in the future)") from None
        except jwt.InvalidAudienceError:
            raise refuse("JWT audience (aud) is not this hub's") from None
        except jwt.InvalidIssuerError:
            raise refuse("JWT issuer (iss) is not the configured one") from None
        except jwt.MissingRequiredClaimError as exc:
            raise refuse(f"JWT lacks the required {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise refuse("JWT signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise refuse(f"invalid JWT: {exc}") from None
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims["sub"]
        if not subject:
            raise refuse("JWT 'sub' is empty")
        exp = claims["exp"]
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise refuse("JWT 'exp' must be a number")
        try:
            expires_at = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            raise refuse("JWT 'exp' is out of range") from None
        scopes: set[str] = set()
        scope = claims.get("scope")
        if scope is not None:
            if not isinstance(scope, str):
                raise refuse("JWT 'scope' must be a space-separated string")
            scopes.update(scope.split())
        listed = claims.get("scopes")
        if listed is not None:
            if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
                raise refuse("JWT 'scopes' must be a list of strings")
            scopes.update(listed)
        return Principal(id=subject, method=self.name, scopes=frozenset(scopes),
                         expires_at=expires_at)

    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        token = parse_fields(self.name, JwtFields, credentials).token
        if not JWT_SHAPE.fullmatch(token):
            raise refuse("not a JWT: expected three base64url parts separated by dots")
        return await self.verify(token)

    async def from_handshake(self, kind: str, value: str) -> Principal | None:
        if kind != TOKEN or not JWT_SHAPE.fullmatch(value):
            return None
        return await self.verify(value)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return JwtConfig


@hookimpl
def ocos_auth_methods(config: JwtConfig) -> list[AuthMethod]:
    return [JwtAuth(config)]
