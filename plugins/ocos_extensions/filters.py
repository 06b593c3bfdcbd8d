"""The `filters` extension: `where` objects, compiled once per subscription into predicates.

A `where` maps a dotted path into the event to a condition `{op: operand, ...}`; every
operator of every condition must hold. Paths start at the event object: `event`, `topic`,
`offset`, `ts`, or `data.<field>[.<field>...]` (a segment of digits indexes a list).

Numbers and decimal strings compare as numbers, exactly (`decimal.Decimal`, never float),
so 256-bit amounts sent as strings compare right. A condition on a field the event lacks
holds only for `exists: false`, `ne` and `nin`.

Everything that can be checked is checked at subscribe time: an unknown root, an unknown
operator, an operand of the wrong type, or a `data.` path that no event kind the
subscription keeps can have (by the kinds' JSON Schemas: a typo) is `invalid_filter`
naming the path. The
compiled predicate is a chain of small closures with no parsing left in it, and it runs
before an event is encoded, so an event no filter keeps is never encoded at all.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ocos_hub import Event, HubError, hookimpl

Getter = Callable[[Event], Any]
Test = Callable[[Any], bool]
Predicate = Callable[[Event], bool]
Number = int | Decimal

# Returned by a getter when the path does not exist in the event.
MISSING: Any = object()

# Signed, optional fraction and exponent, ASCII digits only; no spaces, NaN or Infinity.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

OPS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists", "prefix")
ROOTS = ("event", "topic", "offset", "ts", "data")


class FiltersConfig(BaseModel):
    """`[plugins.filters]`: bounds on one `where` object, so a filter's cost stays small."""

    model_config = ConfigDict(extra="forbid")

    max_conditions: int = Field(
        32, ge=1, description="Most paths in one `where` object.")
    max_in: int = Field(
        1000, ge=1, description="Most operands in one `in` or `nin` list.")
    max_depth: int = Field(
        16, ge=2, description="Most segments in one path (`data.a.b` has three).")


def _refuse(path: str, message: str, **details: Any) -> HubError:
    return HubError("invalid_filter", f"where {path!r}: {message}",
                    {"field": f"where.{path}", **details})


# -- values -----------------------------------------------------------------------------


def _number(value: Any) -> Number | None:
    """The exact numeric value of a JSON number or decimal string, else None.

    Floats go through their shortest repr, so `0.1` equals the string `"0.1"`.
    """
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is str:
        if len(value) < 80 and value.isdigit() and value.isascii():  # amounts, 256-bit too
            return int(value)
        if not _DECIMAL.fullmatch(value):
            return None
        try:
            return Decimal(value)
        except ArithmeticError:  # an exponent past what Decimal holds: not comparable
            return None
    if kind is float:
        return Decimal(repr(value)) if math.isfinite(value) else None
    return None


def _operand_number(path: str, op: str, value: Any) -> Number | None:
    """Like `_number`, with digit-only decimals as ints, which compare faster."""
    number = _number(value)
    if number is None and isinstance(value, str) and _DECIMAL.fullmatch(value):
        raise _refuse(path, f"{op!r}: {value!r} is out of range", op=op)
    if isinstance(number, Decimal) and number.as_tuple().exponent == 0:
        return int(number)
    return number


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


# -- paths ------------------------------------------------------------------------------


def _getter(path: str, max_depth: int) -> Getter:
    segments = path.split(".")
    if not all(segments):
        raise _refuse(path, "a path is dot-separated names with none empty")
    root, keys = segments[0], segments[1:]
    if root not in ROOTS:
        raise _refuse(path, f"unknown path root {root!r}; paths start with "
                      f"{', '.join(ROOTS)} (fields of the event are under `data.`)",
                      roots=list(ROOTS))
    if root != "data":
        if keys:
            raise _refuse(path, f"{root!r} is a scalar and has no fields")
        attribute = "kind" if root == "event" else root
        return lambda event: getattr(event, attribute)
    if not keys:
        raise _refuse(path, "name a field of the data, e.g. `data.amount`")
    if len(segments) > max_depth:
        raise _refuse(path, f"at most {max_depth} segments per path", max_depth=max_depth)
    if len(keys) == 1:
        key = keys[0]
        return lambda event: event.data.get(key, MISSING)
    steps = [(key, int(key) if key.isascii() and key.isdigit() else None) for key in keys]

    def walk(event: Event) -> Any:
        value: Any = event.data
        for key, index in steps:
            if type(value) is dict:
                value = value.get(key, MISSING)
                if value is MISSING:
                    return MISSING
            elif type(value) is list and index is not None and index < len(value):
                value = value[index]
            else:
                return MISSING
        return value

    return walk


# -- paths against the kinds' schemas ------------------------------------------------------


@functools.cache
def _schemas(model: type[BaseModel]) -> tuple[dict[str, Any], ...]:
    """The model's data as serialised, by alias and by field name (a model may use either)."""
    return tuple(model.model_json_schema(by_alias=by_alias, mode="serialization")
                 for by_alias in (True, False))


def _can_hold(node: Any, keys: Sequence[str], defs: Mapping[str, Any]) -> bool:
    """Whether data matching the JSON Schema `node` can have a value at `keys`."""
    if not keys:
        return True
    if not isinstance(node, Mapping):
        return node is not False
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _can_hold(defs.get(ref.removeprefix("#/$defs/"), {}), keys, defs)
    branches = [*node.get("anyOf", ()), *node.get("oneOf", ()), *node.get("allOf", ())]
    if branches:
        return any(_can_hold(branch, keys, defs) for branch in branches)
    head, rest = keys[0], keys[1:]
    kind = node.get("type")
    if kind == "array" or "items" in node or "prefixItems" in node:
        if not (head.isascii() and head.isdigit()):
            return False
        fixed = node.get("prefixItems", ())
        item = fixed[int(head)] if int(head) < len(fixed) else node.get("items", True)
        return _can_hold(item, rest, defs)
    properties = node.get("properties")
    if isinstance(properties, Mapping) and head in properties:
        return _can_hold(properties[head], rest, defs)
    extra = node.get("additionalProperties", properties is None)
    if isinstance(extra, Mapping):
        return _can_hold(extra, rest, defs)
    if kind in ("string", "integer", "number", "boolean", "null"):
        return False
    return extra is True or (kind is None and properties is None)


def _check_fields(path: str, keys: Sequence[str], models: Sequence[type[BaseModel]]) -> None:
    """Refuse a `data.` path that no event of these models can have (a typo)."""
    for model in models:
        for schema in _schemas(model):
            if _can_hold(schema, keys, schema.get("$defs", {})):
                return
    fields = sorted({name for model in models for schema in _schemas(model)[:1]
                     for name in schema.get("properties", {})})
    raise _refuse(path, f"no event this subscription keeps has this field (data fields: "
                  f"{', '.join(fields) or 'none'})", fields=fields)


# -- operators --------------------------------------------------------------------------


def _membership(path: str, op: str, operands: list[Any]) -> Test:
    """True when the value equals one of the operands (numbers by value, bools apart)."""
    numbers: set[Number] = set()
    strings: set[str] = set()
    bools: set[bool] = set()
    with_null = False
    for operand in operands:
        if not _is_scalar(operand):
            raise _refuse(path, f"{op!r} takes strings, numbers, booleans or null, "
                          f"got {operand!r}", op=op)
        if operand is None:
            with_null = True
        elif isinstance(operand, bool):
            bools.add(operand)
        else:
            number = _operand_number(path, op, operand)
            if number is not None:
                numbers.add(number)
            else:
                strings.add(operand)

    def test(value: Any) -> bool:
        kind = type(value)
        if kind is str:
            if value in strings:
                return True
            if not numbers:
                return False
        elif kind is bool:
            return value in bools  # True must not equal 1
        elif value is None:
            return with_null
        number = _number(value)
        return number is not None and number in numbers

    return test


def _eq(path: str, op: str, operand: Any) -> Test:
    if not _is_scalar(operand):
        raise _refuse(path, f"{op!r} takes a string, number, boolean or null", op=op)
    return _membership(path, op, [operand])


def _in(path: str, op: str, operand: Any, max_in: int) -> Test:
    if not isinstance(operand, list):
        raise _refuse(path, f"{op!r} takes a list", op=op)
    if len(operand) > max_in:
        raise _refuse(path, f"{op!r} takes at most {max_in} values", op=op, max_in=max_in)
    return _membership(path, op, operand)


def _negate(test: Test) -> Test:
    return lambda value: not test(value)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
}


def _order(path: str, op: str, operand: Any) -> Test:
    """Numeric order for numeric operands; plain string order (timestamps) for others."""
    if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
        raise _refuse(path, f"{op!r} takes a number or a string", op=op)
    compare = _ORDER[op]
    bound = _operand_number(path, op, operand)
    if bound is not None:
        return lambda value: (number := _number(value)) is not None and compare(number, bound)
    if not isinstance(operand, str):
        raise _refuse(path, f"{op!r} takes a finite number", op=op)
    return lambda value: type(value) is str and compare(value, operand)


def _exists(path: str, op: str, operand: Any) -> Test:
    if not isinstance(operand, bool):
        raise _refuse(path, "'exists' takes true or false", op=op)
    if operand:
        return lambda value: value is not MISSING
    return lambda value: value is MISSING


def _prefix(path: str, op: str, operand: Any) -> Test:
    if not isinstance(operand, str):
        raise _refuse(path, "'prefix' takes a string", op=op)
    return lambda value: type(value) is str and value.startswith(operand)


def _test(path: str, op: str, operand: Any, limits: FiltersConfig) -> Test:
    if op in ("eq", "ne"):
        test = _eq(path, op, operand)
    elif op in ("in", "nin"):
        test = _in(path, op, operand, limits.max_in)
    elif op in _ORDER:
        return _order(path, op, operand)
    elif op == "exists":
        return _exists(path, op, operand)
    elif op == "prefix":
        return _prefix(path, op, operand)
    else:
        raise _refuse(path, f"unknown operator {op!r}; use one of {', '.join(OPS)}",
                      op=op, ops=list(OPS))
    return _negate(test) if op in ("ne", "nin") else test


# -- compiling --------------------------------------------------------------------------


def _check(get: Getter, test: Test) -> Predicate:
    return lambda event: test(get(event))


def _all(checks: list[Predicate]) -> Predicate:
    if not checks:
        return lambda event: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda event: first(event) and second(event)

    def every(event: Event) -> bool:
        for check in checks:
            if not check(event):
                return False
        return True

    return every


def compile_where(where: Mapping[str, Any], limits: FiltersConfig | None = None,
                  models: Sequence[type[BaseModel]] = ()) -> Predicate:
    """Compile a `where` object into a predicate over events, or raise `invalid_filter`.
    `models` are the data models of the event kinds kept: `data.` paths must fit one."""
    limits = limits or FiltersConfig()
    if not isinstance(where, Mapping):
        raise HubError("invalid_filter", "`where` is an object of path: condition",
                       {"field": "where"})
    if len(where) > limits.max_conditions:
        raise HubError("invalid_filter", f"`where` takes at most {limits.max_conditions} "
                       "paths", {"field": "where", "max_conditions": limits.max_conditions})
    checks = []
    for path, condition in where.items():
        get = _getter(path, limits.max_depth)
        if models and path.startswith("data."):
            _check_fields(path, path.split(".")[1:], models)
        if not isinstance(condition, Mapping) or not condition:
            raise _refuse(path, "a condition is an object such as {\"eq\": value}, "
                          f"with operators {', '.join(OPS)}", ops=list(OPS))
        for op, operand in condition.items():
            checks.append(_check(get, _test(path, op, operand, limits)))
    return _all(checks)


@hookimpl
def ocos_config_model() -> type[BaseModel]:
    return FiltersConfig


@hookimpl
def ocos_where(
    config: FiltersConfig,
) -> Callable[[Mapping[str, Any], Sequence[type[BaseModel]]], Predicate]:
    return lambda where, models: compile_where(where, config, models)
