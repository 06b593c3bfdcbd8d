"""The third-party example, installed the way a user installs it and found by entry point.

The package is pip-installed into a temporary directory (from a copy, so that the build
leaves nothing in the source tree); that directory then goes on `sys.path`, where
`importlib.metadata` finds the distribution's `ocos_hub` entry point like any installed one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocos_hub.config import ConfigError
from ocos_hub.plugins import installed_plugins
from tests.conftest import StartHub

EXAMPLE = Path(__file__).resolve().parents[2] / "contrib" / "oracle_feeds"
PACKAGE = "ocos_oracle_feeds"
PRICE = {"feed": "OCOS/USD", "price": "123450000", "decimals": 8, "round": 7,
         "source": "chainlink"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the example as pip installs it."""
    root = tmp_path_factory.mktemp("oracle_feeds")
    source, target = root / "src", root / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                    "__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-input", "--disable-pip-version-check", "--quiet", "--target", str(target),
         str(source)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, (
        "pip could not install contrib/oracle_feeds (building it without isolation needs "
        f"setuptools>=70.1 in this environment):\n{done.stdout}\n{done.stderr}")
    return target


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(site))  # also invalidates importlib's caches
    yield site
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_pip_installs_a_distribution_with_the_entry_point(installed: Path) -> None:
    assert (installed / PACKAGE / "__init__.py").exists()
    plugin = installed_plugins()["oracle-feeds"]
    assert plugin.distribution == "ocos-oracle-feeds"
    assert plugin.value == PACKAGE


async def test_hub_loads_it_by_name_and_carries_its_events(
    installed: Path, start_hub: StartHub
) -> None:
    running = await start_hub(enabled=["oracle-feeds"])
    assert sys.modules[PACKAGE].__file__ == str(installed / PACKAGE / "__init__.py")
    listing = await (await running.http.get("/api/v1/topics")).json()
    assert "oracle-feeds" in str(listing)

    client = await running.connect()
    assert "oracle-feeds" in client.welcome["topics"]
    ack = await client.request("subscribe", topic="oracle-feeds",
                               filter={"feed": ["OCOS/USD"]})
    assert ack["type"] == "ack", ack
    await running.publish(("oracle-feeds", "price.update", {**PRICE, "feed": "WETH/USD"}),
                          ("oracle-feeds", "price.update", PRICE))
    [event] = await client.events(1)
    assert (event["topic"], event["event"], event["offset"]) == ("oracle-feeds",
                                                                 "price.update", 2)
    assert event["data"] == PRICE

    bad = await client.request("publish", topic="oracle-feeds", event="price.update",
                               data={**PRICE, "price": 1.2345})
    assert bad["code"] == "invalid_event" and bad["details"][0]["loc"] == ["price"]
    other = await running.connect()
    bad = await other.request("subscribe", topic="oracle-feeds", filter={"pair": "x"})
    assert bad["code"] == "invalid_filter" and bad["details"]["field"] == "pair"


async def test_its_config_section_is_validated_and_applied(
    installed: Path, start_hub: StartHub
) -> None:
    with pytest.raises(ConfigError, match=r"\[plugins.oracle-feeds\] colour: unknown key"):
        await start_hub({"plugins": {"oracle-feeds": {"colour": "red"}}},
                        enabled=["oracle-feeds"])
    running = await start_hub({"plugins": {"oracle-feeds": {"feeds": ["OCOS/USD"]}}},
                              enabled=["oracle-feeds"])
    client = await running.connect()
    refused = await client.request("publish", topic="oracle-feeds", event="price.update",
                                   data={**PRICE, "feed": "WETH/USD"})
    assert refused["code"] == "invalid_event" and "OCOS/USD" in refused["details"][0]["msg"]
    accepted = await client.request("publish", topic="oracle-feeds", event="price.update",
                                    data=PRICE)
    assert accepted["type"] == "ack" and accepted["offset"] == 1
