"""docs/configuration.md and docs/writing-plugins.md, generated from the code.

configuration.md: every option of the core (`HubConfig`) and of each first-party plugin
(the model its `ocos_config_model` returns), with type, default and description.
writing-plugins.md: the guide (`ocos_hub.docs.guide`) and every hook of
`ocos_hub.hookspecs`, in source order, with its signature and docstring.

`ocos-hub docs --out docs --markdown` writes them; `--check` fails when the committed
pages differ. `undocumented_options` and `undocumented_hooks` name what lacks a
description, so that the tests refuse it.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pluggy
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import ocos_hub
from ocos_hub import hookspecs
from ocos_hub.config import HubConfig, PluginsConfig, _resolve_secret
from ocos_hub.docs.catalog import summary
from ocos_hub.docs.guide import INTRO, OTHER_KINDS, WALKTHROUGH
from ocos_hub.docs.topics import first_party_loaded, load_topics, type_label

REGENERATE = "ocos-hub docs --out docs --markdown"
CONFIG_MARKER = (f"<!-- Generated from the config models by `{REGENERATE}`. "
                 "Do not edit. -->")
PLUGINS_MARKER = (f"<!-- Generated from ocos_hub/hookspecs.py and ocos_hub/docs/guide.py by "
                  f"`{REGENERATE}`. Do not edit. -->")
# Families by package, in the order the configuration page lists them.
FAMILIES = {
    "ocos_topics": "topics",
    "ocos_sources": "sources",
    "ocos_auth": "auth",
    "ocos_middleware": "middleware",
    "ocos_extensions": "extensions",
    "ocos_redis": "scale-out",
    "ocos_nats": "scale-out",
}
FAMILY_ORDER = ["topics", "sources", "auth", "middleware", "extensions", "scale-out", "other"]


@dataclass(frozen=True)
class PluginDoc:
    """A first-party plugin as the configuration page shows it."""

    name: str
    module: str
    family: str
    summary: str
    config_model: type[BaseModel] | None
    topics: tuple[str, ...] = ()


def plugin_config_model(plugin: object, name: str) -> type[BaseModel] | None:
    """The model a plugin's `ocos_config_model` returns, without validating any config."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name=name)
    impls = pm.hook.ocos_config_model.get_hookimpls()
    return typing.cast("type[BaseModel] | None", impls[0].function() if impls else None)


def first_party() -> list[PluginDoc]:
    """Every plugin this distribution declares that imports here, by family then name.

    One that cannot be imported (an optional dependency is missing) is skipped with a note
    on stderr; the committed page then shows up as stale where it documented it.
    """
    found = []
    for name, plugin, loaded in first_party_loaded():
        module = plugin.value.split(":")[0]
        family = FAMILIES.get(module.split(".")[0], "other")
        topics = tuple(topic.name for _, topic in load_topics([name])) if hasattr(
            loaded, "ocos_topics") else ()
        found.append(PluginDoc(name, module, family, summary(loaded),
                               plugin_config_model(loaded, name), topics))
    return sorted(found, key=lambda p: (FAMILY_ORDER.index(p.family), p.name))


# -- configuration.md -----------------------------------------------------------------------

def _models_in(annotation: Any) -> list[tuple[type[BaseModel], str]]:
    """Models inside a field's type, each with how TOML writes it: `table`, `list` (an
    array of tables) or `map` (a table of tables by name)."""
    found: list[tuple[type[BaseModel], str]] = []

    def walk(tp: Any, shape: str) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            found.append((tp, shape))
            return
        origin = typing.get_origin(tp)
        if origin in (list, tuple, set, frozenset):
            shape = "list"
        elif origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
            shape = "map"
        for arg in typing.get_args(tp):
            walk(arg, shape)

    walk(annotation, "table")
    return found


def _is_secret(field: FieldInfo) -> bool:
    def walk(tp: Any) -> bool:
        for meta in getattr(tp, "__metadata__", ()):
            if getattr(meta, "func", None) is _resolve_secret:
                return True
        return any(walk(arg) for arg in typing.get_args(tp))

    return any(getattr(m, "func", None) is _resolve_secret for m in field.metadata) or walk(
        field.annotation)


def _toml(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        value = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value) if abs(value) < 1e15 else value
    return json.dumps(value, ensure_ascii=False, default=str)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def options_table(model: type[BaseModel], table: str) -> list[str]:
    """The Markdown table of a config section, then one per nested table."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    props = schema.get("properties", {})
    lines = ["| option | type | default | description |", "|---|---|---|---|"]
    nested: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        label = type_label(props.get(key, {}), defs)
        if _is_secret(field):
            label += " (secret: `env:NAME` or `file:/path` accepted)"
        models = _models_in(field.annotation)
        default = "required" if field.is_required() else (
            "see below" if any(shape == "table" for _, shape in models)
            else f"`{_toml(field.get_default(call_default_factory=True))}`")
        lines.append(f"| `{key}` | {_cell(label)} | {_cell(default)} | "
                     f"{_cell(field.description or '')} |")
        for inner, shape in models:
            title = {"list": f"[[{table}.{key}]]", "map": f"[{table}.{key}.<name>]"}.get(
                shape, f"[{table}.{key}]")
            nested += ["", f"`{title}`" + (f": {_cell(summary(inner))}" if summary(inner)
                                           else ""), "", *options_table(inner, f"{table}.{key}")]
    return lines + nested


def render_configuration(plugins: list[PluginDoc]) -> str:
    lines = [CONFIG_MARKER, "", "# Configuration", "",
             "The hub reads a TOML file (`ocos-hub serve --config hub.toml`), on top of a "
             "built-in profile when one is named (`--demo`), then environment variables. "
             "Every option has a default. An unknown key, a wrong type or a value out of range "
             "stops the start with a message naming the file, the section and the field; "
             "`ocos-hub check-config hub.toml` validates a file and its plugins without "
             "starting the hub.", "",
             "**Environment.** Every option can be set by a variable named after its path: "
             "`OCOS_HUB__SERVER__PORT=9000`, `OCOS_HUB__PLUGINS__JWT__SECRET=...`, "
             "`OCOS_HUB__PLUGINS__ENABLED='[\"blocks\", \"jwt\"]'`. Values are read as TOML "
             "values when they parse as one (`9000`, `true`, `[\"a\", \"b\"]`), else as "
             "strings. Under gunicorn (`ocos_hub.app:app_from_env`), `OCOS_HUB_CONFIG` names "
             "the file and `OCOS_HUB_PROFILE` a profile (docs/deployment.md).", "",
             "**Secrets.** Options marked *secret* also accept `env:NAME` (read from the "
             "environment variable) or `file:/path` (read from the file, stripped), to keep "
             "them out of the config file.", "",
             "## Core", ""]
    for name, field in HubConfig.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        lines += [f"### `[{name}]`", ""]
        doc = summary(model)
        if doc and model is not PluginsConfig:
            lines += [doc, ""]
        if model is PluginsConfig:
            lines += ["Plugins are found by entry point (group `ocos_hub`) and imported only "
                      "when enabled here. Each plugin's options live in its own section "
                      "`[plugins.<name>]`, below.", ""]
        lines += [*options_table(model, name), ""]
    lines += ["## Plugins", "",
              "First-party plugins, by family. Enable them by name in `[plugins] enabled`; "
              "third-party plugins document their own options.", "",
              "| plugin | family | what |", "|---|---|---|"]
    for plugin in plugins:
        lines.append(f"| [`{plugin.name}`](#plugins{_anchor(plugin.name)}) | {plugin.family} "
                     f"| {_cell(plugin.summary)} |")
    lines.append("")
    for plugin in plugins:
        lines += [f"### `[plugins.{plugin.name}]`", "",
                  f"Module `{plugin.module}`, family {plugin.family}.", ""]
        if plugin.summary:
            lines += [plugin.summary, ""]
        if plugin.topics:
            lines += ["Topics: " + ", ".join(f"[`{name}`](topics/{name}.md)"
                                            for name in plugin.topics) + ".", ""]
        if plugin.config_model is None:
            lines += ["This plugin takes no options.", ""]
        else:
            lines += [*options_table(plugin.config_model, f"plugins.{plugin.name}"), ""]
    return "\n".join(lines)


def _anchor(name: str) -> str:
    """GitHub's anchor of "### `[plugins.<name>]`"."""
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch in "-_")


def iter_options(model: type[BaseModel], path: str) -> Iterator[tuple[str, FieldInfo]]:
    """Every option of a config model, nested tables included, with its dotted path."""
    for name, field in model.model_fields.items():
        yield f"{path}.{name}", field
        for inner, _ in _models_in(field.annotation):
            if not issubclass(inner, PluginsConfig):
                yield from iter_options(inner, f"{path}.{name}")


def undocumented_options(plugins: list[PluginDoc]) -> list[str]:
    """Dotted paths of options without a description (core and first-party plugins)."""
    missing = [path for path, field in iter_options(HubConfig, "") if not field.description
               and not (isinstance(field.annotation, type)
                        and issubclass(field.annotation, BaseModel))]
    for plugin in plugins:
        if plugin.config_model is not None:
            missing += [path for path, field in
                        iter_options(plugin.config_model, f"plugins.{plugin.name}")
                        if not field.description]
    return [path.lstrip(".") for path in missing]


# -- writing-plugins.md ---------------------------------------------------------------------

def hook_specs(module: types.ModuleType = hookspecs) -> list[tuple[str, Any]]:
    """Every hook spec of a module (`ocos_hub.hookspecs`), in source order."""
    specs = [(name, fn) for name, fn in vars(module).items()
             if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")]
    return sorted(specs, key=lambda item: inspect.getsourcelines(item[1])[1])


def undocumented_hooks(module: types.ModuleType = hookspecs) -> list[str]:
    """Hook specs without a docstring: their documentation would be empty."""
    return [name for name, fn in hook_specs(module) if not (fn.__doc__ or "").strip()]


def _signature(name: str, fn: Any) -> str:
    sig = inspect.signature(fn)
    params = ", ".join(
        f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty else p.name
        for p in sig.parameters.values())
    returns = (f" -> {sig.return_annotation}"
               if sig.return_annotation is not inspect.Signature.empty else "")
    return f"def {name}({params}){returns}"


def render_writing_plugins() -> str:
    lines = [PLUGINS_MARKER, "", "# Writing plugins", "", INTRO,
             "## Walk-through: a third-party topic plugin", "", WALKTHROUGH,
             "## Other kinds of plugins", "", OTHER_KINDS,
             "## Hook reference", "",
             inspect.cleandoc(hookspecs.__doc__ or "").replace("::\n", ":\n"), "",
             "| hook | what |", "|---|---|"]
    specs = hook_specs()
    for name, fn in specs:
        lines.append(f"| [`{name}`](#{name}) | {_cell(summary(fn))} |")
    lines.append("")
    for name, fn in specs:
        lines += [f"### `{name}`", "", "```python", _signature(name, fn), "```", "",
                  inspect.cleandoc(fn.__doc__ or ""), ""]
    lines += ["## Public API", "", "Everything a plugin needs is exported by `ocos_hub`:", "",
              "| name | what |", "|---|---|"]
    for name in ocos_hub.__all__:
        obj = getattr(ocos_hub, name)
        if name.startswith("__"):
            continue
        lines.append(f"| `{name}` | {_cell(summary(obj))} |")
    lines.append("")
    return "\n".join(lines)


def render_reference(plugins: list[PluginDoc] | None = None) -> dict[str, str]:
    """File name to text of the generated reference pages."""
    plugins = first_party() if plugins is None else plugins
    return {"configuration.md": render_configuration(plugins),
            "writing-plugins.md": render_writing_plugins()}
