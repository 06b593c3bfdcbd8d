"""The Markdown reference is generated from the code, complete, and committed up to date.

A new hook without a docstring, or a config option without a description, fails here; so
does a change to a hook, an option or a topic model without regenerating docs/.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pluggy
from graphql import build_schema
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from ocos_hub import hookspecs
from ocos_hub.docs.command import markdown_pages, stale
from ocos_hub.docs.reference import (
    REGENERATE,
    PluginDoc,
    first_party,
    hook_specs,
    render_configuration,
    undocumented_hooks,
    undocumented_options,
)
from ocos_hub.plugins import installed_plugins
from tests.docs.helpers import ROOT

DOCS = ROOT / "docs"


def test_every_hook_has_a_docstring_and_a_section() -> None:
    assert undocumented_hooks() == []
    page = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
    specs = hook_specs()
    assert {name for name, _ in specs} == {
        name for name in dir(hookspecs) if name.startswith("ocos_")}
    for name, fn in specs:
        assert f"### `{name}`" in page
        first_line = (fn.__doc__ or "").strip().splitlines()[0]
        assert first_line in page


def test_a_hook_without_docstring_is_caught() -> None:
    spec = pluggy.HookspecMarker(hookspecs.PROJECT)
    module = types.ModuleType("more_hooks")

    @spec
    def ocos_documented() -> None:
        """Says why."""

    @spec
    def ocos_silent() -> None:
        pass

    module.ocos_documented = ocos_documented  # type: ignore[attr-defined]
    module.ocos_silent = ocos_silent  # type: ignore[attr-defined]
    assert undocumented_hooks(module) == ["ocos_silent"]


def test_every_option_of_the_core_and_first_party_plugins_is_described() -> None:
    plugins = first_party()
    names = {plugin.name for plugin in plugins}
    expected = {name for name, plugin in installed_plugins().items()
                if plugin.distribution == "ocos-hub"}
    # Only a plugin declared before its module is written may be absent (its docs then
    # appear when it lands, as a stale page here).
    unwritten = {name for name in expected
                 if importlib.util.find_spec(installed_plugins()[name].value) is None}
    assert expected - names == unwritten
    assert undocumented_options(plugins) == []
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for section in ("[server]", "[access]", "[history]", "[publish]", "[plugins]"):
        assert f"### `{section}`" in page
    for plugin in plugins:
        assert f"### `[plugins.{plugin.name}]`" in page


def test_an_option_without_description_is_caught() -> None:
    class Nested(BaseModel):
        deep: int = 1

    class Careless(BaseModel):
        described: int = Field(1, description="Fine.")
        bare: str = "x"
        table: list[Nested] = Field(default_factory=list, description="Nested tables.")

    plugin = PluginDoc("careless", "careless", "other", "", Careless)
    assert undocumented_options([plugin]) == ["plugins.careless.bare",
                                              "plugins.careless.table.deep"]
    page = render_configuration([plugin])
    assert "| `described` | integer | `1` | Fine. |" in page
    assert "`[[plugins.careless.table]]`" in page


def test_committed_reference_is_current() -> None:
    problems = stale(markdown_pages(), DOCS)
    assert not problems, ("docs/ does not match the code:\n  " + "\n  ".join(problems)
                          + f"\nregenerate from the repository root with: .venv/bin/{REGENERATE}")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocos_hub", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT)


def test_cli_writes_every_document(tmp_path: Path) -> None:
    out = tmp_path / "site"
    done = run_cli("docs", "--out", str(out), "--demo", "--base-url", "https://hub.example")
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"configuration.md", "writing-plugins.md",
                                                "topics", "api"}
    assert {p.name for p in (out / "topics").iterdir()} >= {"blocks.md", "analytics.md"}
    openapi = json.loads((out / "api" / "openapi.json").read_text())
    validate(openapi)
    assert openapi["servers"] == [{"url": "https://hub.example"}]
    asyncapi = json.loads((out / "api" / "asyncapi.json").read_text())
    assert asyncapi["servers"]["hub"]["protocol"] == "wss"
    assert "events.blocks" in asyncapi["operations"]  # the demo profile's topics
    build_schema((out / "api" / "schema.graphql").read_text())
    assert "wss://hub.example/ws" in (out / "api" / "index.html").read_text()

    assert run_cli("docs", "--out", str(out), "--check").returncode == 0
    page = out / "configuration.md"
    page.write_text(page.read_text() + "hand edit\n")
    checked = run_cli("docs", "--out", str(out), "--check")
    assert checked.returncode == 1
    assert "configuration.md: out of date" in checked.stderr and REGENERATE in checked.stderr


def test_cli_reports_config_errors(tmp_path: Path) -> None:
    done = run_cli("docs", "--out", str(tmp_path), "--config", str(tmp_path / "none.toml"))
    assert done.returncode == 2 and "no such config file" in done.stderr
