"""The jwt plugin through a real hub: accepted tokens, and every refusal with its reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ed25519

from ocos_hub.config import ConfigError
from tests.conftest import RunningHub, StartHub
from tests.plugins.auth.helpers import (
    CLOSED,
    SECRET,
    claims,
    ec_key,
    ed_key,
    forge,
    hs256,
    public_pem,
    refused,
    rsa_key,
)


def jwt_config(**section: Any) -> dict[str, Any]:
    return {**CLOSED, "plugins": {"jwt": {"secret": SECRET, **section}}}


async def jwt_hub(start_hub: StartHub, **section: Any) -> RunningHub:
    return await start_hub(jwt_config(**section), enabled=["ticks", "jwt"])


def pem_file(tmp_path: Path, private: Any) -> str:
    path = tmp_path / "public.pem"
    path.write_bytes(public_pem(private))
    return str(path)


async def test_bearer_token_at_handshake(start_hub: StartHub) -> None:
    running = await jwt_hub(start_hub)
    exp = int(time.time()) + 300
    token = hs256(exp=exp, scope="subscribe:ticks publish:ticks")
    client = await running.connect(headers={"Authorization": f"Bearer {token}"})
    principal = client.welcome["principal"]
    assert principal["id"] == "alice" and principal["method"] == "jwt"
    assert principal["scopes"] == ["publish:ticks", "subscribe:ticks"]
    assert principal["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(exp))
    assert client.welcome["topics"] == ["ticks"]
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"


async def test_query_token_for_browsers(start_hub: StartHub) -> None:
    running = await jwt_hub(start_hub)
    client = await running.connect(params={"token": hs256()})
    assert client.welcome["principal"]["id"] == "alice"


async def test_in_band_auth(start_hub: StartHub) -> None:
    running = await jwt_hub(start_hub)
    client = await running.connect()
    assert client.welcome["principal"] is None
    assert (await client.request("subscribe", topic="ticks"))["code"] == "unauthenticated"
    ack = await client.request("auth", method="jwt", token=hs256())
    assert ack["type"] == "ack" and ack["op"] == "auth"
    assert ack["principal"]["id"] == "alice" and ack["principal"]["method"] == "jwt"
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"


async def test_scopes_from_scope_string_and_scopes_list(start_hub: StartHub) -> None:
    running = await jwt_hub(start_hub)
    token = hs256(scope="subscribe:ticks", scopes=["publish:ticks", "subscribe:private"])
    client = await running.connect(headers={"Authorization": f"Bearer {token}"})
    assert client.welcome["principal"]["scopes"] == [
        "publish:ticks", "subscribe:private", "subscribe:ticks"]


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_longer_hmac_algorithms(start_hub: StartHub, alg: str) -> None:
    running = await jwt_hub(start_hub, algorithms=[alg])
    token = jwt.encode(claims(), SECRET, algorithm=alg)
    client = await running.connect(headers={"Authorization": f"Bearer {token}"})
    assert client.welcome["principal"]["id"] == "alice"


@pytest.mark.parametrize("alg, key", [("RS256", rsa_key), ("ES256", ec_key),
                                      ("EdDSA", ed_key)])
async def test_public_key_algorithms(start_hub: StartHub, tmp_path: Path, alg: str,
                                     key: Callable[[], Any]) -> None:
    running = await start_hub({**CLOSED, "plugins": {"jwt": {
        "algorithms": [alg], "public_key_file": pem_file(tmp_path, key())}}},
        enabled=["ticks", "jwt"])
    token = jwt.encode(claims(), key(), algorithm=alg)
    client = await running.connect(headers={"Authorization": f"Bearer {token}"})
    assert client.welcome["principal"]["id"] == "alice"


async def test_jwks_file_picks_the_key_by_kid(start_hub: StartHub, tmp_path: Path) -> None:
    old, new = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    keys = []
    for kid, private in (("2024", old), ("2025", new)):
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
        keys.append({**jwk, "kid": kid})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    running = await start_hub({**CLOSED, "plugins": {"jwt": {
        "algorithms": ["EdDSA"], "jwks_file": str(path)}}}, enabled=["ticks", "jwt"])
    for kid, private in (("2024", old), ("2025", new)):
        token = jwt.encode(claims(sub=kid), private, algorithm="EdDSA", headers={"kid": kid})
        client = await running.connect(headers={"Authorization": f"Bearer {token}"})
        assert client.welcome["principal"]["id"] == kid
    crossed = jwt.encode(claims(), old, algorithm="EdDSA", headers={"kid": "2025"})
    body = await refused(running, headers={"Authorization": f"Bearer {crossed}"})
    assert "signature does not verify" in body["message"]
    unknown = jwt.encode(claims(), old, algorithm="EdDSA", headers={"kid": "2019"})
    body = await refused(running, headers={"Authorization": f"Bearer {unknown}"})
    assert "key id '2019'" in body["message"]


def public_jwk(private: ed25519.Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    return {**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key())), "kid": kid}


async def jwks_server(aiohttp_server: Any, keys: list[dict[str, Any]],
                      fetches: list[float]) -> str:
    """An identity provider's `jwks_uri`, serving whatever `keys` holds when asked; an
    empty list answers 500."""

    async def jwks(request: web.Request) -> web.Response:
        fetches.append(time.monotonic())
        if not keys:
            return web.Response(status=500, text="down")
        return web.json_response({"keys": keys})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = await aiohttp_server(app)
    return str(server.make_url("/.well-known/jwks.json"))


async def test_jwks_url_is_fetched_once_then_again_for_a_rotated_key(
    start_hub: StartHub, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ocos_auth.jwt.MIN_REFETCH", 0.3)
    old, new = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    keys, fetches = [public_jwk(old, "2025")], []
    url = await jwks_server(aiohttp_server, keys, fetches)
    running = await start_hub({**CLOSED, "plugins": {"jwt": {
        "algorithms": ["EdDSA"], "jwks_url": url}}}, enabled=["ticks", "jwt"])
    assert fetches == []  # nothing is fetched until a token needs it

    for _ in range(3):
        token = jwt.encode(claims(), old, algorithm="EdDSA", headers={"kid": "2025"})
        client = await running.connect(headers={"Authorization": f"Bearer {token}"})
        assert client.welcome["principal"]["id"] == "alice"
    assert len(fetches) == 1

    # The provider rotates; tokens with the new kid pass once it is refetched, and made-up
    # kids in the meantime do not make the hub hammer the provider.
    keys.append(public_jwk(new, "2026"))
    rotated = jwt.encode(claims(sub="bob"), new, algorithm="EdDSA", headers={"kid": "2026"})
    for kid in ("x1", "x2", "x3"):
        made_up = jwt.encode(claims(), new, algorithm="EdDSA", headers={"kid": kid})
        body = await refused(running, headers={"Authorization": f"Bearer {made_up}"})
        assert f"key id '{kid}' is not in the configured key set" in body["message"]
    assert len(fetches) == 1  # within MIN_REFETCH of the first fetch
    await asyncio.sleep(0.35)
    client = await running.connect(headers={"Authorization": f"Bearer {rotated}"})
    assert client.welcome["principal"]["id"] == "bob"
    assert len(fetches) == 2


async def test_jwks_url_unreachable_refuses_as_unavailable_until_it_answers(
    start_hub: StartHub, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ocos_auth.jwt.MIN_REFETCH", 0.3)
    key = ed25519.Ed25519PrivateKey.generate()
    keys: list[dict[str, Any]] = []
    url = await jwks_server(aiohttp_server, keys, [])
    running = await start_hub({**CLOSED, "plugins": {"jwt": {
        "algorithms": ["EdDSA"], "jwks_url": url}}}, enabled=["ticks", "jwt"])
    token = jwt.encode(claims(), key, algorithm="EdDSA", headers={"kid": "k"})
    resp = await running.http.get("/ws", headers={"Authorization": f"Bearer {token}"})
    body = await resp.json()
    assert resp.status == 503 and body["code"] == "unavailable"
    assert url in body["message"] and "500" in body["message"]
    keys.append(public_jwk(key, "k"))
    await asyncio.sleep(0.35)
    client = await running.connect(headers={"Authorization": f"Bearer {token}"})
    assert client.welcome["principal"]["id"] == "alice"


# -- refusals: each at the handshake (HTTP 401 + JSON) and in band (an `error` reply) ------


def _rs_pem() -> bytes:
    return public_pem(rsa_key())


REFUSALS: dict[str, tuple[dict[str, Any], Callable[[], str], str]] = {
    "expired": ({}, lambda: hs256(exp=int(time.time()) - 3600), "expired"),
    "not yet valid": ({}, lambda: hs256(nbf=int(time.time()) + 3600), "not valid yet"),
    "issued in the future": ({}, lambda: hs256(iat=int(time.time()) + 3600), "not valid yet"),
    "wrong audience": ({"audience": "ocos-hub"}, lambda: hs256(aud="other-app"), "audience"),
    "missing audience": ({"audience": "ocos-hub"}, hs256, "'aud'"),
    "wrong issuer": ({"issuer": "https://id.ocos"}, lambda: hs256(iss="https://evil"),
                     "issuer"),
    "missing issuer": ({"issuer": "https://id.ocos"}, hs256, "'iss'"),
    "missing exp": ({}, lambda: hs256(exp=None), "'exp'"),
    "missing sub": ({}, lambda: hs256(sub=None), "'sub'"),
    "alg none": ({}, lambda: forge({"alg": "none", "typ": "JWT"}, claims(), None),
                 "'none' is not accepted"),
    "alg not allowed": ({}, lambda: jwt.encode(claims(), SECRET, algorithm="HS512"),
                        "'HS512' is not accepted"),
    "bad signature": ({}, lambda: hs256(secret="another-secret-" + "y" * 40),
                      "signature does not verify"),
    "tampered payload": ({}, lambda: _tamper(hs256()), "signature does not verify"),
    "scope not a string": ({}, lambda: hs256(scope=["admin"]), "'scope' must be"),
    "malformed header": ({}, lambda: "bm90LWpzb24.eyJ9.c2ln", "malformed JWT"),
}


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims_ = json.loads(jwt.utils.base64url_decode(payload))
    claims_["scope"] = "admin"
    forged = jwt.utils.base64url_encode(json.dumps(claims_).encode()).decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_at_handshake(start_hub: StartHub, case: str) -> None:
    section, make, reason = REFUSALS[case]
    running = await jwt_hub(start_hub, **section)
    body = await refused(running, headers={"Authorization": f"Bearer {make()}"})
    assert body["code"] == "invalid_credentials"
    assert reason in body["message"], body


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refused_in_band(start_hub: StartHub, case: str) -> None:
    section, make, reason = REFUSALS[case]
    running = await jwt_hub(start_hub, **section)
    client = await running.connect()
    reply = await client.request("auth", method="jwt", token=make())
    assert reply["type"] == "error" and reply["code"] == "invalid_credentials", reply
    assert reason in reply["message"], reply
    assert "Traceback" not in reply["message"]
    assert (await client.request("subscribe", topic="ticks"))["code"] == "unauthenticated"


async def test_hs_rs_confusion_refused(start_hub: StartHub, tmp_path: Path) -> None:
    """An RS256 public key used as an HS256 secret: the classic key-confusion forgery."""
    pem = _rs_pem()
    forged = forge({"alg": "HS256", "typ": "JWT"}, claims(scope="admin"), pem)
    only_rs = await start_hub({**CLOSED, "plugins": {"jwt": {
        "algorithms": ["RS256"], "public_key_file": pem_file(tmp_path, rsa_key())}}},
        enabled=["ticks", "jwt"])
    body = await refused(only_rs, headers={"Authorization": f"Bearer {forged}"})
    assert body["code"] == "invalid_credentials" and "'HS256' is not accepted" in body["message"]
    both = await start_hub({**CLOSED, "plugins": {"jwt": {
        "algorithms": ["HS256", "RS256"], "secret": SECRET,
        "public_key_file": pem_file(tmp_path, rsa_key())}}}, enabled=["ticks", "jwt"])
    body = await refused(both, headers={"Authorization": f"Bearer {forged}"})
    assert "signature does not verify" in body["message"]
    client = await both.connect()
    reply = await client.request("auth", method="jwt", token=forged)
    assert reply["code"] == "invalid_credentials"
    # and the other way round: an RS256 header over a token HMAC'd with the secret
    swapped = forge({"alg": "RS256"}, claims(), SECRET.encode())
    body = await refused(both, headers={"Authorization": f"Bearer {swapped}"})
    assert body["code"] == "invalid_credentials"


async def test_wrong_key_type_for_alg_refused(start_hub: StartHub, tmp_path: Path) -> None:
    running = await start_hub({**CLOSED, "plugins": {"jwt": {
        "algorithms": ["RS256", "EdDSA"], "public_key_file": pem_file(tmp_path, rsa_key())}}},
        enabled=["ticks", "jwt"])
    token = jwt.encode(claims(), ed_key(), algorithm="EdDSA")
    body = await refused(running, headers={"Authorization": f"Bearer {token}"})
    assert "EdDSA does not match the configured key" in body["message"]


async def test_leeway_tolerates_small_skew(start_hub: StartHub) -> None:
    running = await jwt_hub(start_hub, leeway=30)
    token = hs256(nbf=int(time.time()) + 10)
    client = await running.connect(headers={"Authorization": f"Bearer {token}"})
    assert client.welcome["principal"]["id"] == "alice"


async def test_not_jwt_shaped_is_left_to_other_methods(start_hub: StartHub) -> None:
    running = await jwt_hub(start_hub)
    body = await refused(running, headers={"Authorization": "Bearer opaque-session-token"})
    assert body == {"code": "invalid_credentials",
                    "message": "no enabled auth method accepts this token"}
    client = await running.connect()
    reply = await client.request("auth", method="jwt", token="opaque-session-token")
    assert reply["code"] == "invalid_credentials" and "not a JWT" in reply["message"]


async def test_in_band_fields_checked(start_hub: StartHub) -> None:
    running = await jwt_hub(start_hub)
    client = await running.connect()
    reply = await client.request("auth", method="jwt")
    assert reply["code"] == "invalid_message" and reply["details"]["field"] == "token"
    reply = await client.request("auth", method="jwt", token=hs256(), extra=1)
    assert reply["code"] == "invalid_message" and reply["details"]["field"] == "extra"
    reply = await client.request("auth", method="kerberos", token="x")
    assert reply["code"] == "invalid_message" and reply["details"]["methods"] == ["jwt"]


@pytest.mark.parametrize("section, problem", [
    ({"secret": None}, "secret: required for HS256"),
    ({"secret": "short"}, "at least 32 bytes"),
    ({"algorithms": ["HS512"], "secret": "x" * 40}, "at least 64 bytes"),
    ({"algorithms": ["none"]}, "algorithms"),
    ({"algorithms": ["RS256"], "secret": None},
     "public_key_file, jwks_file or jwks_url: required"),
    ({"algorithms": ["RS256"], "secret": None, "jwks_url": "http://idp.example/jwks"},
     "jwks_url: https is required"),
    ({"algorithms": ["RS256"], "secret": None, "jwks_url": "https://idp.example/jwks",
      "jwks_file": "/etc/jwks.json"}, "not jwks_file and jwks_url"),
    ({"secret": "-----BEGIN PUBLIC KEY-----" + "x" * 40}, "looks like a public key"),
    ({"secret": "env:OCOS_TEST_UNSET_SECRET"}, "OCOS_TEST_UNSET_SECRET is not set"),
    ({"audience": []}, "at least one"),
])
async def test_bad_config_refused_at_start(start_hub: StartHub, section: dict[str, Any],
                                           problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        await jwt_hub(start_hub, **section)
    assert problem in str(info.value) and "jwt" in str(info.value)


async def test_secret_from_env_and_file(start_hub: StartHub, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCOS_TEST_JWT_SECRET", SECRET)
    running = await jwt_hub(start_hub, secret="env:OCOS_TEST_JWT_SECRET")
    client = await running.connect(headers={"Authorization": f"Bearer {hs256()}"})
    assert client.welcome["principal"]["id"] == "alice"
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    running = await jwt_hub(start_hub, secret=f"file:{path}")
    client = await running.connect(headers={"Authorization": f"Bearer {hs256()}"})
    assert client.welcome["principal"]["id"] == "alice"


async def test_public_key_file_errors(start_hub: StartHub, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        await start_hub({"plugins": {"jwt": {"algorithms": ["RS256"],
                         "public_key_file": str(tmp_path / "missing.pem")}}},
                        enabled=["ticks", "jwt"])
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        await start_hub({"plugins": {"jwt": {"algorithms": ["RS256"],
                         "public_key_file": str(garbage)}}}, enabled=["ticks", "jwt"])
    with pytest.raises(ConfigError, match="verifies none of ES256"):
        await start_hub({"plugins": {"jwt": {"algorithms": ["ES256"],
                         "public_key_file": pem_file(tmp_path, rsa_key())}}},
                        enabled=["ticks", "jwt"])
