"""Topics and event kinds as GraphQL SDL (`GET /schema.graphql`).

For clients and gateways that think in GraphQL: one `Subscription` field per topic, whose
arguments are the topic's filter fields plus `events`, `since` and `rewind` (the socket's
`subscribe`), returning the topic's event envelope; one object type per event kind, named
`<Topic><Kind>` in PascalCase. Names are made GraphQL-safe (`oracle-feeds` becomes the
field `oracle_feeds`). Decimal strings are the `Decimal` scalar, times `DateTime`,
integers without a 32-bit bound `Long`, free-form objects `JSON`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ocos_hub.docs.catalog import Catalog, model_schemas
from ocos_hub.topics import Topic

REFS = "#/$defs/"
INT32 = 2**31 - 1
SCALARS = {
    "Decimal": "A non-negative decimal number as a string (`1500.25`): amounts stay strings "
    "so that 256-bit values survive JSON.",
    "DateTime": "An instant as an RFC 3339 string, UTC.",
    "Long": "An integer that may exceed 32 bits, sent as a JSON number.",
    "JSON": "Any JSON value.",
}
NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
RESERVED_VALUES = {"true", "false", "null"}


def safe_name(text: str) -> str:
    """A GraphQL name for any text: other characters become `_`, no leading digit."""
    name = re.sub(r"[^_0-9A-Za-z]", "_", text)
    if not name or name[0].isdigit():
        name = "_" + name
    return "x" + name if name.startswith("__") else name


def pascal(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", text)
                   if part) or "X"


def _describe(text: str, indent: str = "") -> list[str]:
    text = " ".join(text.split()).replace('"""', '\\"""')
    return [f'{indent}"""{text}"""'] if text else []


class _Types:
    """Output and input types generated from JSON Schemas, named once each."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.blocks: dict[str, list[str]] = {}
        self.by_ref: dict[tuple[str, bool], str] = {}

    def _unique(self, base: str) -> str:
        name, n = base, 2
        while name in self.blocks or name in SCALARS:
            name, n = f"{base}{n}", n + 1
        self.blocks[name] = []  # reserved until filled in
        return name

    def type_of(self, schema: Mapping[str, Any], hint: str, *, is_input: bool) -> str:
        """The GraphQL type (without `!`) of a JSON Schema."""
        ref = schema.get("$ref")
        if isinstance(ref, str):
            key = ref.rsplit("/", 1)[-1]
            if (key, is_input) not in self.by_ref:
                target = self.named.get(key, {})
                if "enum" not in target and target.get("type") != "object":
                    return self.type_of(target, hint, is_input=is_input)
                base = safe_name(pascal(key)) + ("Input" if is_input and "enum" not in target
                                                 else "")
                if "enum" in target and (key, not is_input) in self.by_ref:
                    self.by_ref[(key, is_input)] = self.by_ref[(key, not is_input)]
                else:
                    self.by_ref[(key, is_input)] = self.define(target, base, is_input=is_input)
            return self.by_ref[(key, is_input)]
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            real = [option for option in options if option.get("type") != "null"]
            if len(real) == 1:
                return self.type_of(real[0], hint, is_input=is_input)
            return "JSON"
        if "enum" in schema:
            return self.define(schema, hint, is_input=is_input)
        if "const" in schema:
            return _scalar({"type": _json_type(schema["const"])})
        kind = schema.get("type")
        if kind == "array":
            inner = self.type_of(schema.get("items", {}), hint, is_input=is_input)
            return f"[{inner}!]"
        if kind == "object":
            if schema.get("properties"):
                return self.define(schema, hint, is_input=is_input)
            return "JSON"
        return _scalar(schema)

    def define(self, schema: Mapping[str, Any], base: str, *, is_input: bool) -> str:
        """A named enum, object or input type for a JSON Schema; returns its name."""
        if "enum" in schema:
            values = [str(value) for value in schema["enum"]]
            if not all(NAME.match(v) and v not in RESERVED_VALUES for v in values):
                return "String"
            name = self._unique(safe_name(base))
            self.blocks[name] = [*_describe(schema.get("description", "")),
                                 f"enum {name} {{", *(f"  {v}" for v in values), "}"]
            return name
        name = self._unique(safe_name(base))
        lines = [*_describe(schema.get("description", "")),
                 f"{'input' if is_input else 'type'} {name} {{"]
        required = set(schema.get("required", ()))
        fields = schema.get("properties", {})
        for field, prop in fields.items():
            gql = self.type_of(prop, name + pascal(field), is_input=is_input)
            bang = "!" if field in required and not is_input and not _nullable(prop) else ""
            lines += _describe(prop.get("description", ""), "  ")
            lines.append(f"  {safe_name(field)}: {gql}{bang}")
        if not fields:
            lines += ['  """Always null: this kind carries no data."""', "  _: Boolean"]
        self.blocks[name] = [*lines, "}"]
        return name


def _nullable(schema: Mapping[str, Any]) -> bool:
    options = schema.get("anyOf") or schema.get("oneOf") or []
    return any(option.get("type") == "null" for option in options)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _scalar(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if kind == "string":
        return {"decimal": "Decimal", "date-time": "DateTime"}.get(schema.get("format", ""),
                                                                    "String")
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        fits = low is not None and high is not None and -INT32 - 1 <= low and high <= INT32
        return "Int" if fits else "Long"
    if kind == "number":
        return "Float"
    if kind == "boolean":
        return "Boolean"
    return "JSON"


def graphql_sdl(catalog: Catalog) -> str:
    """The SDL of a hub's topics."""
    models = [m for t in catalog.topics for m in [*t.kinds.values(), t.filter_model] if m]
    refs, named = model_schemas(models, REFS)
    types = _Types(named)
    subscription: list[str] = []
    for topic in catalog.topics:
        prefix = safe_name(pascal(topic.name))
        members = []
        for kind, model in topic.kinds.items():
            target = named.get(refs[model]["$ref"].rsplit("/", 1)[-1], {})
            schema = {**target, "description": f"`{kind}`: {target.get('description', '')}"}
            members.append(types.define(schema, prefix + pascal(kind), is_input=False))
        union = types._unique(prefix + "Data")
        types.blocks[union] = [f'"""The data of a `{topic.name}` event, by kind."""',
                               f"union {union} = {' | '.join(members)}"]
        envelope = types._unique(prefix + "Event")
        types.blocks[envelope] = [
            f'"""An event of `{topic.name}`: the socket\'s `event` frame."""',
            f"type {envelope} {{", '  """The topic."""', "  topic: String!",
            '  """The event kind (`block.new`)."""', "  event: String!",
            '  """Position in the topic, strictly increasing."""', "  offset: Long!",
            '  """When the hub accepted it."""', "  ts: DateTime!",
            '  """The kind\'s data."""', f"  data: {union}!", "}"]
        arguments = ", ".join(_arguments(topic, types, refs))
        subscription += _describe(topic.description, "  ")
        subscription.append(f"  {safe_name(topic.name)}({arguments}): {envelope}!")
    out = ["# OCOS Hub topics as GraphQL types, generated from the topic models.",
           "# The hub speaks its own WebSocket protocol (ocos.v1); a gateway can map",
           "# each Subscription field to a `subscribe` request with the same arguments.", ""]
    for scalar, text in SCALARS.items():
        out += [*_describe(text), f"scalar {scalar}", ""]
    out += ['"""Where a resumed subscription starts: the last offset received, in its epoch."""',
            "input Since {", "  offset: Long!", "  epoch: String!", "}", ""]
    out += ['"""What the hub offers."""', "type Query {", '  """Names of the topics."""',
            "  topics: [String!]!", "}", ""]
    for lines in types.blocks.values():
        out += [*lines, ""]
    if subscription:
        out += ['"""One field per topic: the arguments are the topic\'s filter."""',
                "type Subscription {", *subscription, "}", ""]
    return "\n".join(out)


def _arguments(topic: Topic, types: _Types, refs: Mapping[Any, Any]) -> list[str]:
    args = ["events: [String!]"]
    taken = {"events", "since", "rewind"}
    if topic.filter_model is not None:
        schema = types.named.get(refs[topic.filter_model]["$ref"].rsplit("/", 1)[-1], {})
        for field, prop in schema.get("properties", {}).items():
            gql = types.type_of(prop, safe_name(pascal(topic.name)) + pascal(field) + "Filter",
                                is_input=True)
            name = safe_name(field)
            if name in taken:
                name = f"filter_{name}"
            taken.add(name)
            args.append(f"{name}: {gql}")
    args += ["since: Since", "rewind: Int"]
    return args
