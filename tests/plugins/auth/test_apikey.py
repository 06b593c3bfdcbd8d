"""API keys: presented every way, unknown ones refused, and `ocos-hub apikey new` output
pasted into a config working as is."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from ocos_auth.apikey import key_hash
from ocos_hub.cli import main
from ocos_hub.config import ConfigError
from tests.conftest import RunningHub, StartHub
from tests.plugins.auth.helpers import CLOSED, refused

KEY = "ocos_test-key-for-the-bot"


async def key_hub(start_hub: StartHub, keys: list[dict[str, Any]] | None = None) -> RunningHub:
    keys = keys if keys is not None else [
        {"label": "bot", "hash": key_hash(KEY), "scopes": ["subscribe:ticks"]}]
    return await start_hub({**CLOSED, "plugins": {"apikey": {"keys": keys}}},
                           enabled=["ticks", "apikey"])


async def test_key_presented_every_way(start_hub: StartHub) -> None:
    running = await key_hub(start_hub)
    by_header = await running.connect(headers={"X-API-Key": KEY})
    by_query = await running.connect(params={"api_key": KEY})
    for client in (by_header, by_query):
        assert client.welcome["principal"] == {"id": "apikey:bot", "method": "apikey",
                                               "scopes": ["subscribe:ticks"],
                                               "expires_at": None}
    in_band = await running.connect()
    ack = await in_band.request("auth", method="apikey", key=KEY)
    assert ack["principal"]["id"] == "apikey:bot"
    assert (await in_band.request("subscribe", topic="ticks"))["type"] == "ack"


async def test_unknown_key_refused(start_hub: StartHub) -> None:
    running = await key_hub(start_hub)
    for wrong in ("ocos_guess", KEY[:-1], KEY + "x", "x" * 1000):
        body = await refused(running, headers={"X-API-Key": wrong})
        assert body == {"code": "invalid_credentials", "message": "unknown API key"}
        client = await running.connect()
        reply = await client.request("auth", method="apikey", key=wrong)
        assert reply["code"] == "invalid_credentials" and reply["message"] == "unknown API key"


async def test_key_as_bearer_token_is_not_an_api_key(start_hub: StartHub) -> None:
    running = await key_hub(start_hub)
    body = await refused(running, headers={"Authorization": f"Bearer {KEY}"})
    assert body["message"] == "no enabled auth method accepts this token"


async def test_among_many_keys_the_right_one_matches(start_hub: StartHub) -> None:
    keys = [{"label": f"k{i}", "hash": key_hash(f"key-{i}"), "scopes": [f"subscribe:t{i}"]}
            for i in range(20)]
    running = await key_hub(start_hub, keys)
    client = await running.connect(headers={"X-API-Key": "key-13"})
    assert client.welcome["principal"]["id"] == "apikey:k13"
    assert client.welcome["principal"]["scopes"] == ["subscribe:t13"]


@pytest.mark.parametrize("keys, problem", [
    ([{"label": "a", "hash": "md5:abc"}], "hash"),
    ([{"label": "a", "hash": key_hash("x").upper()}], "hash"),
    ([{"label": "bad label", "hash": key_hash("x")}], "label"),
    ([{"label": "a", "hash": key_hash("x")}, {"label": "a", "hash": key_hash("y")}],
     "two keys have the label 'a'"),
    ([{"label": "a", "hash": key_hash("x")}, {"label": "b", "hash": key_hash("x")}],
     "two keys have the hash"),
    ([{"label": "a", "hash": key_hash("x"), "secret": "x"}], "unknown key"),
])
async def test_bad_config(start_hub: StartHub, keys: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        await key_hub(start_hub, keys)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["apikey", *argv]) == 0
    return capsys.readouterr().out


async def test_apikey_new_output_works_as_config(start_hub: StartHub,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "new", "--label", "indexer", "--scopes", "subscribe:ticks",
               "publish:ticks")
    [key] = re.findall(r"^    (ocos_\S+)$", out, re.MULTILINE)
    table = out[out.index("[[plugins.apikey.keys]]"):].split("\n\n")[0]
    config = tomllib.loads(table)
    assert config["plugins"]["apikey"]["keys"][0]["label"] == "indexer"
    assert key not in table  # only the hash goes into the config
    running = await start_hub(
        {**CLOSED, "plugins": {"apikey": config["plugins"]["apikey"]}},
        enabled=["ticks", "apikey"])
    client = await running.connect(headers={"X-API-Key": key})
    assert client.welcome["principal"] == {"id": "apikey:indexer", "method": "apikey",
                                           "scopes": ["publish:ticks", "subscribe:ticks"],
                                           "expires_at": None}
    ack = await client.request("publish", topic="ticks", event="tick", data={"n": 1})
    assert ack["type"] == "ack"
    other = _run(capsys, "new", "--label", "indexer")
    assert re.findall(r"^    (ocos_\S+)$", other, re.MULTILINE) != [key]
    assert "scopes = []" in other


def test_apikey_new_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["new", "--label", "no spaces please"], ["new", "--label", "a",
                                                          "--scopes", "bad scope"],
                 ["new"], []):
        with pytest.raises(SystemExit) as exit_info:
            main(["apikey", *argv])
        assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


async def test_undecodable_key_is_just_unknown(start_hub: StartHub) -> None:
    running = await key_hub(start_hub)
    client = await running.connect()
    await client.ws.send_str('{"type": "auth", "id": 1, "method": "apikey", "key": "\\ud800"}')
    reply = await client.recv()
    assert reply["code"] == "invalid_credentials" and reply["message"] == "unknown API key"
