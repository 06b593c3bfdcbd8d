"""Wallet login (ed25519, SIWS) over HTTP and on the socket, through a real hub."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ocos_auth.base58 import b58encode
from ocos_hub.config import ConfigError
from tests.conftest import RunningHub, StartHub
from tests.core.test_config import run_cli
from tests.plugins.auth.helpers import CLOSED, Wallet, challenge, sign_in, verify

WALLET = {"domain": "hub.ocos.example", "uri": "https://hub.ocos.example",
          "chain_id": "ocos:testnet", "statement": "Sign in to the OCOS explorer.",
          "scopes": ["subscribe:ticks"]}


async def wallet_hub(start_hub: StartHub, **section: Any) -> RunningHub:
    return await start_hub({**CLOSED, "plugins": {"wallet": {**WALLET, **section}}},
                           enabled=["ticks", "sessions", "wallet"])


async def test_challenge_message_is_exactly_siws(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    reply = await challenge(running, wallet.address)
    assert set(reply) == {"message", "nonce", "expires_at"}
    match = re.fullmatch(
        r"hub\.ocos\.example wants you to sign in with your Solana account:\n"
        + re.escape(wallet.address) + r"\n\n"
        r"Sign in to the OCOS explorer\.\n\n"
        r"URI: https://hub\.ocos\.example\n"
        r"Version: 1\n"
        r"Chain ID: ocos:testnet\n"
        r"Nonce: (?P<nonce>[1-9A-HJ-NP-Za-km-z]{16,})\n"
        r"Issued At: (?P<issued>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\n"
        r"Expiration Time: (?P<expires>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)",
        reply["message"])
    assert match, reply["message"]
    assert match["nonce"] == reply["nonce"] and match["expires"] == reply["expires_at"]
    issued = datetime.fromisoformat(match["issued"])
    expires = datetime.fromisoformat(match["expires"])
    assert expires - issued == timedelta(seconds=300)
    again = await challenge(running, wallet.address)
    assert again["nonce"] != reply["nonce"]


async def test_http_login_then_socket_with_the_session(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    login = await sign_in(running, wallet)
    assert set(login) == {"token", "expires_at", "principal"}
    assert login["principal"] == {"id": wallet.address, "method": "session",
                                  "scopes": ["subscribe:ticks"],
                                  "expires_at": login["expires_at"]}
    client = await running.connect(headers={"Authorization": f"Bearer {login['token']}"})
    assert client.welcome["principal"]["id"] == wallet.address
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"
    assert (await client.request("subscribe", topic="private"))["code"] == "forbidden"


async def test_base64_signature_accepted(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    message = (await challenge(running, wallet.address))["message"]
    resp = await verify(running, {"address": wallet.address, "message": message,
                                  "signature": wallet.sign_base64(message)})
    assert resp.status == 200, await resp.text()


async def test_login_on_the_socket(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    client = await running.connect()
    ack = await client.request("challenge", address=wallet.address)
    assert ack["type"] == "ack" and ack["op"] == "challenge"
    assert set(ack) == {"type", "id", "op", "message", "nonce", "expires_at"}
    reply = await client.request("auth", method="signature", address=wallet.address,
                                 message=ack["message"], signature=wallet.sign(ack["message"]))
    assert reply["type"] == "ack", reply
    principal = reply["principal"]
    # the same session as over HTTP: its token comes back, for other sockets and for logout
    assert principal["id"] == wallet.address and principal["method"] == "session"
    assert principal["scopes"] == ["subscribe:ticks"] and principal["expires_at"]
    assert reply["expires_at"] == principal["expires_at"] and reply["token"]
    assert (await client.request("subscribe", topic="ticks"))["type"] == "ack"
    bearer = {"Authorization": f"Bearer {reply['token']}"}
    other = await running.connect(headers=bearer)
    assert other.welcome["principal"]["id"] == wallet.address
    bad = await client.request("challenge", address="not-base58-0OIl")
    assert bad["code"] == "invalid_message" and bad["details"]["field"] == "address"
    replay = await client.request("auth", method="signature", address=wallet.address,
                                  message=ack["message"], signature=wallet.sign(ack["message"]))
    assert replay["code"] == "invalid_credentials" and "already used" in replay["message"]
    resp = await running.http.post("/auth/logout", headers=bearer)
    assert await resp.json() == {"revoked": True, "connections_closed": 2}
    assert await client.closed(timeout=1.0) == 4003
    assert await other.closed(timeout=1.0) == 4003


async def test_in_band_signature_fields_checked(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    client = await running.connect()
    reply = await client.request("auth", method="signature", address=Wallet().address)
    assert reply["code"] == "invalid_message" and reply["details"]["field"] == "message"


# -- refusals ---------------------------------------------------------------------------


async def _refused(running: RunningHub, body: dict[str, Any], reason: str) -> dict[str, Any]:
    resp = await verify(running, body)
    assert resp.status == 401, await resp.text()
    reply = await resp.json()
    assert reply["code"] == "invalid_credentials" and reason in reply["message"], reply
    return reply  # type: ignore[no-any-return]


async def _signed(running: RunningHub, wallet: Wallet) -> dict[str, Any]:
    message = (await challenge(running, wallet.address))["message"]
    return {"address": wallet.address, "message": message, "signature": wallet.sign(message)}


async def test_replayed_nonce_refused(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    body = await _signed(running, Wallet())
    assert (await verify(running, body)).status == 200
    await _refused(running, body, "unknown, expired or already used")


async def test_nonce_replayed_on_the_socket_after_http(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    body = await _signed(running, Wallet())
    assert (await verify(running, body)).status == 200
    client = await running.connect()
    reply = await client.request("auth", method="signature", **body)
    assert reply["code"] == "invalid_credentials" and "already used" in reply["message"]


@pytest.mark.parametrize("line, wrong, reason", [
    ("domain", "evil.example", "domain 'evil.example' is not this hub's"),
    ("uri", "https://evil.example", "uri 'https://evil.example' is not this hub's"),
    ("chain_id", "ocos:mainnet", "chain_id 'ocos:mainnet' is not this hub's"),
])
async def test_wrong_field_refused_and_nonce_burnt(start_hub: StartHub, line: str, wrong: str,
                                                   reason: str) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    good = await _signed(running, wallet)
    original = {"domain": WALLET["domain"], "uri": f"URI: {WALLET['uri']}",
                "chain_id": f"Chain ID: {WALLET['chain_id']}"}[line]
    replacement = original.replace(str(WALLET[line]), wrong)
    message = good["message"].replace(original, replacement, 1)
    assert message != good["message"]
    tampered = {**good, "message": message, "signature": wallet.sign(message)}
    reply = await _refused(running, tampered, reason)
    assert reply["details"]["field"] == line
    # the signature was valid, so the nonce is spent: the untouched message fails too
    await _refused(running, good, "already used")


async def test_expired_challenge_refused(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub, challenge_ttl=0.2)
    body = await _signed(running, Wallet())
    await asyncio.sleep(0.3)
    await _refused(running, body, "unknown, expired or already used")


async def test_expiration_time_in_message_enforced(start_hub: StartHub) -> None:
    """A client may not lengthen its challenge: the signed Expiration Time still binds."""
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    good = await _signed(running, wallet)
    message = re.sub(r"Expiration Time: .*", "Expiration Time: 2001-01-01T00:00:00.000Z",
                     good["message"])
    await _refused(running, {**good, "message": message, "signature": wallet.sign(message)},
                   "message: expired")


async def test_issued_at_in_the_future_refused(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    good = await _signed(running, wallet)
    message = re.sub(r"Issued At: .*", "Issued At: 2999-01-01T00:00:00.000Z", good["message"])
    await _refused(running, {**good, "message": message, "signature": wallet.sign(message)},
                   "Issued At is in the future")


async def test_signature_by_another_key_refused_and_nonce_kept(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet, thief = Wallet(), Wallet()
    good = await _signed(running, wallet)
    forged = {**good, "signature": thief.sign(good["message"])}
    reply = await _refused(running, forged, "does not verify")
    assert reply["details"]["field"] == "signature"
    # a forgery proves nothing about the nonce's owner, so it does not burn the nonce
    assert (await verify(running, good)).status == 200


async def test_message_naming_another_address_refused(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    victim, thief = Wallet(), Wallet()
    good = await _signed(running, victim)
    # the thief signs the victim's message with its own key and claims its own address
    await _refused(running, {"address": thief.address, "message": good["message"],
                             "signature": thief.sign(good["message"])},
                   "names another address")
    # or rewrites the address line too: the nonce belongs to the victim
    own = await _signed(running, victim)
    message = own["message"].replace(victim.address, thief.address)
    await _refused(running, {"address": thief.address, "message": message,
                             "signature": thief.sign(message)}, "issued to another address")


async def test_unknown_nonce_refused(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    good = await _signed(running, wallet)
    message = re.sub(r"Nonce: .*", "Nonce: 1111111111111111", good["message"])
    await _refused(running, {**good, "message": message, "signature": wallet.sign(message)},
                   "nonce unknown")


async def test_message_in_another_format_refused_and_nonce_burnt(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    wallet = Wallet()
    good = await _signed(running, wallet)
    message = good["message"].replace("Version: 1\n", "")
    await _refused(running, {**good, "message": message, "signature": wallet.sign(message)},
                   "not the sign-in message format")
    await _refused(running, good, "already used")


@pytest.mark.parametrize("address, reason", [
    ("0OIl" + "1" * 40, "not base58"),
    (b58encode(b"\x07" * 31), "32 bytes, this is 31"),
    (b58encode(b"\x07" * 33), "32 bytes, this is 33"),
    ("1" * 200, "at most 44"),
])
async def test_malformed_addresses(start_hub: StartHub, address: str, reason: str) -> None:
    running = await wallet_hub(start_hub)
    resp = await running.http.post("/auth/challenge", json={"address": address})
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == "invalid_message" and reason in body["message"]
    assert body["details"]["field"] == "address"
    good = await _signed(running, Wallet())
    await _refused(running, {**good, "address": address}, reason)


@pytest.mark.parametrize("signature, reason", [
    ("0OIl", "expected 64 bytes"),
    (b58encode(b"\x01" * 63), "expected 64 bytes"),
    ("x" * 500, "too long"),
])
async def test_malformed_signatures(start_hub: StartHub, signature: str, reason: str) -> None:
    running = await wallet_hub(start_hub)
    good = await _signed(running, Wallet())
    await _refused(running, {**good, "signature": signature}, reason)
    assert (await verify(running, good)).status == 200


async def test_malformed_bodies(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub)
    resp = await running.http.post("/auth/challenge", data=b"{not json")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_json"
    resp = await running.http.post("/auth/challenge", json={"address": 5})
    assert resp.status == 400 and (await resp.json())["details"]["field"] == "address"
    resp = await running.http.post("/auth/verify", json={"address": Wallet().address})
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_message"


async def test_pending_challenges_are_bounded(start_hub: StartHub) -> None:
    running = await wallet_hub(start_hub, max_pending=2)
    wallet = Wallet()
    await challenge(running, wallet.address)
    await challenge(running, wallet.address)
    resp = await running.http.post("/auth/challenge", json={"address": wallet.address})
    assert resp.status == 503 and (await resp.json())["code"] == "unavailable"


async def test_wallet_needs_the_sessions_plugin(start_hub: StartHub, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'wallet' needs the 'sessions' plugin"):
        await start_hub({"plugins": {"wallet": WALLET}}, enabled=["ticks", "wallet"])
    config = tmp_path / "hub.toml"
    config.write_text('[plugins]\nenabled = ["wallet"]\n[plugins.wallet]\n'
                      'domain = "hub.ocos.example"\nuri = "https://hub.ocos.example"\n'
                      'chain_id = "ocos:testnet"\n')
    checked = run_cli("check-config", str(config))
    assert checked.returncode != 0
    assert "'wallet' needs the 'sessions' plugin; enable it too" in checked.stderr


@pytest.mark.parametrize("section, field", [
    ({"domain": "has space"}, "domain"),
    ({"statement": "two\nlines"}, "statement"),
    ({"challenge_ttl": 0}, "challenge_ttl"),
    ({"scopes": ["bad scope"]}, "scopes"),
])
async def test_bad_config(start_hub: StartHub, section: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"\[plugins\.wallet(\] |\.){field}"):
        await wallet_hub(start_hub, **section)


async def test_message_with_a_lone_surrogate_refused(start_hub: StartHub) -> None:
    """JSON may escape a lone surrogate, which no UTF-8 signature can cover."""
    running = await wallet_hub(start_hub)
    good = await _signed(running, Wallet())
    client = await running.connect()
    fields = f'"address": "{good["address"]}", "signature": "{good["signature"]}"'
    await client.ws.send_str(
        f'{{"type": "auth", "id": 1, "method": "signature", "message": "\\ud800", {fields}}}')
    reply = await client.recv()
    assert reply["code"] == "invalid_message" and reply["details"]["field"] == "message"
    resp = await running.http.post("/auth/verify", data=(
        f'{{"message": "\\ud800", {fields}}}').encode())
    assert resp.status == 400 and (await resp.json())["details"]["field"] == "message"
