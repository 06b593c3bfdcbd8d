"""Reference pages for topics, generated from their models so they cannot drift from them.

`render_topic` turns any `Topic` into a Markdown page: its description, each event kind
with a table of fields, the filter fields and their rules, and an example event frame per
kind. The command loads topics exactly as a hub does (entry points, `PluginHost`)::

    python -m ocos_hub.docs --out docs/topics            # write docs/topics/<topic>.md
    python -m ocos_hub.docs --out docs/topics --check    # exit 1 when a page is out of date

Without `--plugin`, it documents every topic of the plugins this distribution declares.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ocos_hub.broker import Event
from ocos_hub.config import ConfigError, parse_config
from ocos_hub.plugins import GROUP, InstalledPlugin, PluginHost, installed_plugins
from ocos_hub.topics import Topic

DISTRIBUTION = "ocos-hub"
REGENERATE = "python -m ocos_hub.docs --out docs/topics"
MARKER = f"<!-- Generated from the topic's models by `{REGENERATE}`. Do not edit. -->"
EXAMPLE_TS = "2025-06-01T12:00:00.000Z"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__) if obj.__doc__ else ""


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return name, defs.get(name, {})
    return "", schema


def type_label(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    """A short human name for a JSON Schema type (`string (decimal)`, `integer ≥ 0`, ...)."""
    name, schema = _resolve(schema, defs)
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        labels = [type_label(option, defs) for option in options if option.get("type") != "null"]
        nullable = len(labels) < len(options)
        return " or ".join(labels) + (" or null" if nullable else "")
    kind = schema.get("type")
    if kind == "string":
        fmt = schema.get("format")
        return f"string ({fmt})" if fmt else "string"
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{kind} {low} to {high}"
        if low is not None:
            return f"{kind} ≥ {low}"
        if high is not None:
            return f"{kind} ≤ {high}"
        return str(kind)
    if kind == "array":
        return "list of " + type_label(schema.get("items", {}), defs)
    if kind == "boolean":
        return "boolean"
    return name or str(kind or "any")


def _formats(schema: Any, defs: Mapping[str, Any], found: dict[str, dict[str, Any]]) -> None:
    """Collect every string `format` used, with its pattern and example, for the legend."""
    if isinstance(schema, Mapping):
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt not in found:
            found[fmt] = {"pattern": schema.get("pattern"), "example": (schema.get("examples")
                                                                         or [None])[0]}
        for value in schema.values():
            _formats(value, defs, found)
    elif isinstance(schema, list):
        for value in schema:
            _formats(value, defs, found)


def field_rows(schema: Mapping[str, Any]) -> list[tuple[str, str, bool, str]]:
    """`(name, type label, required, description)` per property of a model's JSON Schema;
    the Markdown pages and the HTML page show the same rows."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    return [(name, type_label(prop, defs), name in required, prop.get("description", ""))
            for name, prop in schema.get("properties", {}).items()]


def _fields_table(schema: Mapping[str, Any], with_required: bool) -> list[str]:
    head = "| field | type | required | description |" if with_required else (
        "| field | type | description |")
    lines = [head, "|---|---|---|---|" if with_required else "|---|---|---|"]
    for name, label, required, description in field_rows(schema):
        cells = [f"`{name}`", _cell(label)]
        if with_required:
            cells.append("yes" if required else "no")
        cells.append(_cell(description))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _json_block(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=2, ensure_ascii=False), "```"]


def render_topic(topic: Topic, plugin: str | None = None) -> str:
    """The Markdown reference page of one topic."""
    lines = [MARKER, "", f"# Topic `{topic.name}`", ""]
    if plugin:
        lines += [f"Provided by the plugin `{plugin}` (enable it in `[plugins] enabled`).", ""]
    if topic.description:
        lines += [topic.description, ""]
    if topic.visible is not None:
        lines += ["Delivery is narrowed per event: a subscriber receives only the events this "
                  "topic lets its principal see (see above), replayed ones included.", ""]
    lines += ["Event kinds: " + ", ".join(f"[`{kind}`](#{_anchor(kind)})"
                                          for kind in topic.kinds) + ".", ""]
    formats: dict[str, dict[str, Any]] = {}

    lines += ["## Filter", ""]
    if topic.filter_model is None:
        lines += ["This topic declares no filter fields; a `filter` object is refused with "
                  "`invalid_filter`.", ""]
    else:
        schema = topic.filter_model.model_json_schema()
        _formats(schema, schema.get("$defs", {}), formats)
        lines += [f"The `filter` object of a `subscribe` request (`{topic.filter_model.__name__}`"
                  "). Every field is optional. A field it does not declare, or a value of the "
                  "wrong type, is refused with `invalid_filter` naming the field. The filter "
                  "applies to replayed events (`since`, `rewind`) exactly as to live ones.", ""]
        doc = _doc(topic.filter_model)
        if doc:
            lines += [doc, ""]
        lines += [*_fields_table(schema, with_required=False), ""]

    lines += ["## Events", ""]
    for offset, (kind, model) in enumerate(topic.kinds.items(), start=1):
        schema = model.model_json_schema(by_alias=True)
        _formats(schema, schema.get("$defs", {}), formats)
        lines += [f"### `{kind}`", ""]
        doc = _doc(model)
        if doc:
            lines += [doc, ""]
        lines += [f"Data model `{model.__name__}`:", ""]
        lines += [*_fields_table(schema, with_required=True), ""]
        example = topic.examples.get(kind)
        if example is None:
            lines += ["_No example._", ""]
            continue
        data = topic.validate_data(kind, example)
        frame = Event(topic.name, kind, offset, EXAMPLE_TS, data).wire()
        lines += ["Example event frame:", "", *_json_block(frame), ""]

    if formats:
        lines += ["## Value formats", "",
                  "String fields with a `format` in their JSON Schema:", "",
                  "| format | pattern | example |", "|---|---|---|"]
        for fmt, info in sorted(formats.items()):
            pattern = f"`{_cell(info['pattern'])}`" if info["pattern"] else ""
            sample = f"`{_cell(str(info['example']))}`" if info["example"] is not None else ""
            lines.append(f"| `{fmt}` | {pattern} | {sample} |")
        lines.append("")
    return "\n".join(lines)


def _anchor(kind: str) -> str:
    """GitHub's heading anchor for "### `kind`": lowercased, punctuation but - and _ dropped."""
    return "".join(ch for ch in kind.lower() if ch.isalnum() or ch in "-_")


def first_party_loaded() -> Iterator[tuple[str, InstalledPlugin, Any]]:
    """This distribution's plugins, imported, in entry-point order: `(name, plugin, module)`.

    A plugin that cannot be imported here (an optional dependency is missing) is skipped
    with a note on stderr; what the docs took from it then shows up as stale.
    """
    for name, plugin in installed_plugins().items():
        if plugin.distribution != DISTRIBUTION:
            continue
        try:
            loaded = next(iter(importlib.metadata.entry_points(group=GROUP, name=name))).load()
        except ImportError as exc:
            print(f"docs: skipping plugin {name!r} ({plugin.value}): {exc}", file=sys.stderr)
            continue
        yield name, plugin, loaded


def first_party_plugins() -> list[str]:
    """Names of this distribution's plugins that provide topics, in entry-point order."""
    return [name for name, _, loaded in first_party_loaded() if hasattr(loaded, "ocos_topics")]


def load_topics(plugins: Iterable[str]) -> list[tuple[str, Topic]]:
    """`(plugin name, topic)` for the named plugins, loaded and configured as a hub does."""
    config = parse_config({"plugins": {"enabled": list(plugins)}}, "docs")
    return PluginHost(config).collect("ocos_topics")


def render_pages(topics: Iterable[tuple[str, Topic]]) -> dict[str, str]:
    """File name (`<topic>.md`) to page text, for every topic."""
    return {f"{topic.name}.md": render_topic(topic, plugin) for plugin, topic in topics}


def _generated(path: Path) -> bool:
    return path.read_text(encoding="utf-8").startswith(MARKER)


def stale_pages(pages: Mapping[str, str], out: Path, complete: bool = True) -> list[str]:
    """Problems that make the committed pages in `out` differ from `pages`, one per line.

    With `complete` (`pages` documents every topic), a generated page of a topic that is
    gone is a problem too."""
    problems = []
    for name, text in sorted(pages.items()):
        path = out / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date")
    for path in sorted(out.glob("*.md")) if complete else ():
        if path.name not in pages and _generated(path):
            problems.append(f"{path}: no such topic any more")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocos_hub.docs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/topics"),
                        help="directory of the pages (default: docs/topics)")
    parser.add_argument("--plugin", action="append", dest="plugins", metavar="NAME",
                        help="document this plugin's topics (repeatable; default: every "
                        "first-party topic plugin)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a page is missing or out of date")
    args = parser.parse_args(argv)
    try:
        pages = render_pages(load_topics(args.plugins or first_party_plugins()))
    except ConfigError as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = stale_pages(pages, args.out, complete=not args.plugins)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"regenerate with: {REGENERATE}", file=sys.stderr)
        return 1 if problems else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (args.out / name).write_text(text, encoding="utf-8")
    if not args.plugins:
        for path in args.out.glob("*.md"):
            if path.name not in pages and _generated(path):
                path.unlink()
    print(f"wrote {len(pages)} page(s) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
