"""Static API keys for services and bots (auth method `apikey`).

The config holds only each key's SHA-256, so it can live in version control; the key
itself is printed once by `ocos-hub apikey new`. A presented key is hashed and compared
with every configured hash in constant time, so timing says nothing about near matches.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from ocos_auth.common import CredentialFields, Scope, parse_fields, refuse
from ocos_hub import AuthMethod, Principal, hookimpl
from ocos_hub.auth import API_KEY

KEY_PREFIX = "ocos_"  # makes leaked keys easy to spot (secret scanners, logs)
MAX_KEY_CHARS = 256


class ApiKeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Name of the key's holder; the principal id is `apikey:<label>`.")
    hash: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="`sha256:` and the hex SHA-256 of the key, as `ocos-hub apikey new` "
        "prints it.")
    scopes: list[Scope] = Field(default_factory=list, description="Scopes the key grants.")


class ApiKeyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[ApiKeyEntry] = Field(
        default_factory=list, description="The accepted keys: `{label, hash, scopes}` "
        "tables, most simply one `[[plugins.apikey.keys]]` table each.")

    @field_validator("keys")
    @classmethod
    def _unique(cls, keys: list[ApiKeyEntry]) -> list[ApiKeyEntry]:
        for attr in ("label", "hash"):
            seen: set[str] = set()
            for entry in keys:
                value = getattr(entry, attr)
                if value in seen:
                    raise ValueError(f"two keys have the {attr} {value!r}")
                seen.add(value)
        return keys


def key_hash(key: str) -> str:
    """The config form of a key's hash."""
    return "sha256:" + hashlib.sha256(_bytes(key)).hexdigest()


def _bytes(key: str) -> bytes:
    """Any presented string hashes, even one with lone surrogates (undecodable header
    bytes, JSON `\\ud800` escapes): it simply matches no key."""
    return key.encode("utf-8", "surrogatepass")


class KeyFields(CredentialFields):
    key: StrictStr = Field(description="The API key (`ocos_...`).")


class ApiKeyAuth(AuthMethod):
    name = "apikey"
    credentials_model = KeyFields
    handshake_credentials = (API_KEY,)

    def __init__(self, config: ApiKeyConfig) -> None:
        self._keys = [(entry, bytes.fromhex(entry.hash[7:])) for entry in config.keys]

    def verify(self, key: str) -> Principal:
        if len(key) > MAX_KEY_CHARS:
            raise refuse("unknown API key")
        digest = hashlib.sha256(_bytes(key)).digest()
        found: ApiKeyEntry | None = None
        for entry, expected in self._keys:  # every hash is compared, match or not
            if hmac.compare_digest(digest, expected):
                found = entry
        if found is None:
            raise refuse("unknown API key")
        return Principal(id=f"apikey:{found.label}", method=self.name,
                         scopes=frozenset(found.scopes), attributes={"label": found.label})

    async def authenticate(self, credentials: Mapping[str, Any]) -> Principal:
        return self.verify(parse_fields(self.name, KeyFields, credentials).key)

    async def from_handshake(self, kind: str, value: str) -> Principal | None:
        return self.verify(value) if kind == API_KEY else None


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return ApiKeyConfig


@hookimpl
def ocos_auth_methods(config: ApiKeyConfig) -> list[AuthMethod]:
    return [ApiKeyAuth(config)]


# -- `ocos-hub apikey ...` -----------------------------------------------------------------


def _checked(field: str) -> Any:
    """An argparse `type` validating one value the way the config will."""

    def check(value: str) -> str:
        sample = {"label": "x", "hash": "sha256:" + "0" * 64, "scopes": []}
        sample[field] = [value] if field == "scopes" else value
        try:
            ApiKeyEntry.model_validate(sample)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(
                f"{value!r}: {exc.errors(include_url=False)[0]['msg']}") from None
        return value

    return check


def new_key(args: argparse.Namespace) -> int:
    """Print a fresh key once, and the config table that accepts it."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    scopes = list(dict.fromkeys(args.scopes))
    print(f"New API key {args.label!r}; it is shown only now, the hub keeps only its hash:\n")
    print(f"    {key}\n")
    print("Add to the hub's config file:\n")
    print("[[plugins.apikey.keys]]")
    print(f"label = {json.dumps(args.label)}")
    print(f"hash = {json.dumps(key_hash(key))}")
    print(f"scopes = [{', '.join(json.dumps(s) for s in scopes)}]\n")
    print("Clients send it as the 'X-API-Key' header ('?api_key=' from a browser), or in an")
    print('auth request: {"type": "auth", "method": "apikey", "key": "..."}.')
    return 0


def register_command(parser: argparse.ArgumentParser) -> None:
    """`ocos-hub apikey new --label NAME --scopes SCOPE...`"""
    parser.description = "Manage API keys of the apikey plugin."
    actions = parser.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="create a key; print it once with its config table")
    new.add_argument("--label", required=True, type=_checked("label"),
                     help="name of the key's holder (principal id apikey:<label>)")
    new.add_argument("--scopes", nargs="*", default=[], type=_checked("scopes"),
                     metavar="SCOPE", help="scopes granted, e.g. subscribe:blocks publish:*")
    new.set_defaults(func=new_key)
