"""The `dashboard` plugin over HTTP: the page, its assets, their headers, and its options.

What the page does in a browser is tested in tests/e2e.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from pydantic import BaseModel

from ocos_extensions import dashboard
from ocos_hub.app import create_app
from ocos_hub.config import ConfigError, load_config, parse_config
from tests.conftest import RunningHub, StartHub
from tests.ticks import TicksPlugin


class PageParts(HTMLParser):
    """The asset URLs and the settings block of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.settings = ""
        self.title = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("href", "src"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if tag == "script" and found.get("id") == "ocos-settings":
            self._in = "settings"
        elif tag == "title":
            self._in = "title"

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "settings":
            self.settings += data
        elif self._in == "title":
            self.title += data


async def start(start_hub: StartHub, **options: Any) -> RunningHub:
    overrides: dict[str, Any] = {"plugins": {"dashboard": options}} if options else {}
    return await start_hub(overrides, enabled=("ticks", "dashboard"))


async def fetch_page(hub: RunningHub, path: str = "/") -> tuple[Any, PageParts]:
    resp = await hub.http.get(path)
    assert resp.status == 200, await resp.text()
    parts = PageParts()
    parts.feed(await resp.text())
    return resp, parts


async def test_the_page_carries_the_socket_path_and_is_revalidated(start_hub: StartHub) -> None:
    hub = await start_hub({"server": {"ws_path": "/socket"}}, enabled=("ticks", "dashboard"))
    resp, parts = await fetch_page(hub)
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache"
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    settings = json.loads(parts.settings)
    assert settings["wsPath"] == "/socket"
    assert settings["topics"] is None and settings["rewind"] == 300
    again = await hub.http.get("/", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304


async def test_every_asset_is_served_with_its_type_and_cached_for_good(
        start_hub: StartHub) -> None:
    hub = await start(start_hub)
    _, parts = await fetch_page(hub)
    assets = [url for url in parts.urls if url.startswith("/static/")]
    assert len(assets) == 3, parts.urls  # icon, style sheet, script
    script = next(url for url in assets if url.endswith("app.js"))
    base = script.rsplit("/", 1)[0]
    # The modules the script imports are served from the same folder.
    body = await (await hub.http.get(script)).text()
    imported = re.findall(r'from "\./([a-z]+\.js)"', body)
    assert set(imported) == {"connection.js", "dom.js", "format.js", "views.js"}
    expected = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml"}
    for url in {*assets, *(f"{base}/{name}" for name in imported), f"{base}/chart.js"}:
        resp = await hub.http.get(url)
        assert resp.status == 200, url
        assert resp.headers["Content-Type"] == expected[url[url.rfind("."):]], url
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        again = await hub.http.get(url, headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status == 304


async def test_assets_are_compressed_for_browsers_that_accept_it(start_hub: StartHub) -> None:
    hub = await start(start_hub)
    _, parts = await fetch_page(hub)
    script = next(url for url in parts.urls if url.endswith("app.js"))
    packed = await hub.http.get(script, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    plain = await hub.http.get(script, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await packed.text() == await plain.text()


async def test_an_old_build_or_unknown_asset_is_not_found(start_hub: StartHub) -> None:
    hub = await start(start_hub)
    _, parts = await fetch_page(hub)
    script = next(url for url in parts.urls if url.endswith("app.js"))
    build = script.split("/")[2]
    for url in (script.replace(build, "0" * 12), f"/static/{build}/secrets.txt",
                f"/static/{build}/index.html"):
        resp = await hub.http.get(url)
        assert resp.status == 404, url
        assert (await resp.json())["code"] == "not_found"


async def test_path_and_title_are_configurable_and_escaped(start_hub: StartHub) -> None:
    hub = await start(start_hub, path="/dash", title="Ops </script><b>room</b>{{assets}}",
                      topics=["ticks"], rewind=0)
    assert (await hub.http.get("/")).status == 404
    resp, parts = await fetch_page(hub, "/dash")
    _, slash = await fetch_page(hub, "/dash/")
    assert parts.settings == slash.settings
    assert parts.title == "Ops </script><b>room</b>{{assets}}"  # text, not markup
    assert "<b>room" not in await resp.text()
    settings = json.loads(parts.settings)
    assert settings["title"] == "Ops </script><b>room</b>{{assets}}"
    assert settings["topics"] == ["ticks"] and settings["rewind"] == 0
    assert all(url.startswith("/dash/static/") for url in parts.urls)
    for url in parts.urls:
        assert (await hub.http.get(url)).status == 200


def test_every_option_has_a_default_and_a_description() -> None:
    model: type[BaseModel] = dashboard.ocos_config_model()
    for name, field in model.model_fields.items():
        assert field.description, f"[plugins.dashboard] {name} has no description"
        assert not field.is_required()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("path", "dash", "should match pattern"),
    ("colour", "red", "unknown key"),
    ("rewind", -1, "greater than or equal to 0"),
    ("token_decimals", {"OCOS": 99}, "decimals must be between 0 and 77"),
])
def test_bad_options_stop_the_start(option: str, value: Any, message: str) -> None:
    config = parse_config({"plugins": {"enabled": ["ticks", "dashboard"],
                                       "dashboard": {option: value}}})
    with pytest.raises(ConfigError, match=rf"\[plugins.dashboard\] {option}: .*{message}"):
        create_app(config, plugins=[("ticks", TicksPlugin())])


def test_the_demo_profile_serves_the_dashboard() -> None:
    config = load_config(profile="demo", environ={})
    assert "dashboard" in config.plugins.enabled
    app = create_app(config)
    assert any(route.resource is not None and route.resource.canonical == "/"
               for route in app.router.routes())
