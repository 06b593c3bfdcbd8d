"""Plugins arrive by entry point, exactly as a third party ships them, and only when enabled."""

from __future__ import annotations

import gc
import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocos_hub import Topic, hookimpl
from ocos_hub.app import create_app, serving
from ocos_hub.config import ConfigError, parse_config
from ocos_hub.hub import Hub
from ocos_hub.plugins import PluginHost, installed_plugins
from tests.conftest import Client

ALPHA = '''
from pydantic import BaseModel, ConfigDict, Field
from ocos_hub import Topic, hookimpl


class Reading(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    celsius: float


class AlphaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic_name: str = Field("weather", description="name of the topic")
    stations: int = Field(1, ge=1, description="how many stations")


@hookimpl
def ocos_config_model():
    return AlphaConfig


@hookimpl
def ocos_topics(config):
    return [Topic(config.topic_name, {"reading": Reading}, description="third-party topic")]
'''

BETA = '''
raise RuntimeError("beta must never be imported unless enabled")
'''


@pytest.fixture
def third_party(tmp_path: Path) -> Iterator[Path]:
    """An installed distribution `ocos-third-party` declaring two plugins, alpha and beta."""
    (tmp_path / "ocos_tp_alpha.py").write_text(ALPHA)
    (tmp_path / "ocos_tp_beta.py").write_text(BETA)
    info = tmp_path / "ocos_third_party-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ocos-third-party\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [ocos_hub]
        alpha = ocos_tp_alpha
        beta = ocos_tp_beta
    """))
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("ocos_tp_alpha", "ocos_tp_beta"):
            sys.modules.pop(name, None)
        importlib.invalidate_caches()


def build(data: dict[str, object]) -> Hub:
    config = parse_config(data, "hub.toml")
    return Hub(config, PluginHost(config))


def test_installed_plugins_are_listed_with_their_distribution(third_party: Path) -> None:
    found = installed_plugins()
    assert found["alpha"].distribution == "ocos-third-party"
    assert found["alpha"].version == "1.2.3"
    assert "beta" in found
    assert "ocos_tp_beta" not in sys.modules


def test_only_enabled_plugins_are_imported(third_party: Path) -> None:
    hub = build({"plugins": {"enabled": ["alpha"]}})
    assert "weather" in hub.topics
    assert "ocos_tp_alpha" in sys.modules
    assert "ocos_tp_beta" not in sys.modules


def test_plugin_config_section_is_validated(third_party: Path) -> None:
    hub = build({"plugins": {"enabled": ["alpha"], "alpha": {"topic_name": "climate"}}})
    assert "climate" in hub.topics
    with pytest.raises(ConfigError) as caught:
        build({"plugins": {"enabled": ["alpha"], "alpha": {"stations": "many"}}})
    assert "hub.toml: [plugins.alpha] stations" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        build({"plugins": {"enabled": ["alpha"], "alpha": {"colour": "red"}}})
    assert "[plugins.alpha] colour: unknown key" in str(caught.value)


def test_a_broken_plugin_says_so(third_party: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build({"plugins": {"enabled": ["beta"]}})
    assert "plugin 'beta'" in str(caught.value) and "failed to import" in str(caught.value)


def test_a_plugin_listed_twice(third_party: Path) -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        build({"plugins": {"enabled": ["alpha", "alpha"]}})


def test_two_plugins_defining_one_topic(third_party: Path) -> None:
    class Copycat:
        @hookimpl
        def ocos_topics(self, config: object) -> list[Topic]:
            return [Topic("weather", {})]

    config = parse_config({"plugins": {"enabled": ["alpha", "copycat"]}})
    with pytest.raises(ConfigError, match="topic 'weather' is already defined"):
        Hub(config, PluginHost(config, [("copycat", Copycat())]))


async def test_entry_point_topic_served_end_to_end(third_party: Path, aiohttp_client) -> None:
    config = parse_config({"plugins": {"enabled": ["alpha"]},
                           "access": {"anonymous": ["subscribe:weather", "publish:weather"]}})
    http = await aiohttp_client(create_app(config))
    ws = await http.ws_connect("/ws")
    client = Client(ws)
    client.welcome = await client.recv()
    assert client.welcome["topics"] == ["weather"]
    assert (await client.request("subscribe", topic="weather"))["type"] == "ack"
    resp = await http.post("/api/v1/events", json={"topic": "weather", "event": "reading",
                                                   "data": {"celsius": 21.5}})
    assert resp.status == 200
    [event] = await client.events(1)
    assert event["data"] == {"celsius": 21.5}


async def test_core_runs_with_every_plugin_disabled(aiohttp_client) -> None:
    http = await aiohttp_client(create_app(parse_config({})))
    ws = await http.ws_connect("/ws")
    client = Client(ws)
    welcome = await client.recv()
    assert welcome["topics"] == []
    reply = await client.request("subscribe", topic="blocks")
    assert reply["code"] == "unknown_topic"
    assert (await http.get("/healthz")).status == 200
    assert (await (await http.get("/api/v1/topics")).json()) == {"topics": []}


async def test_a_served_hub_keeps_its_startup_objects_out_of_full_collections(
    aiohttp_client,
) -> None:
    # `ocos-hub serve` and `app_from_env` build their app with `serving`: once started,
    # everything alive (modules, plugins, config) is frozen, so that a full collection walks
    # only what connections and events created since.
    gc.unfreeze()
    try:
        http = await aiohttp_client(serving(create_app(parse_config({}))))
        assert (await http.get("/healthz")).status == 200
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # this test process serves many apps
