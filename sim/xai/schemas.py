"""JSON Schema work for structured answers: the smallest valid value of a schema, an answer's facts
fitted into a schema, a deliberate break of one, and validation (``jsonschema``, Draft 2020-12).

Local ``$ref`` (``#/$defs/...``, ``#/definitions/...``), ``anyOf``/``oneOf``/``allOf``, ``enum``,
``const`` and the numeric and length bounds are understood: pydantic and the OpenAI SDK's
``parse()`` produce schemas with all of them.
"""

from __future__ import annotations

import math
from typing import Any

from jsonschema import Draft202012Validator

MISSING = object()
_MAX_DEPTH = 24


def resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$ref`` chain followed; {} for anything that is not a schema object."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#"):
        target: Any = root
        for part in schema["$ref"][1:].split("/"):
            if part:
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        schema, seen = target, seen + 1
        if seen > _MAX_DEPTH:
            return {}
    return schema if isinstance(schema, dict) else {}


def _merged(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """An ``allOf`` folded into one schema (enough for the shapes generators emit)."""
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf", []):
        part = resolve(part, root)
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        return str(kinds[0]) if kinds else None
    if kind is not None:
        return str(kind)
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _bounded_number(schema: dict[str, Any], integer: bool) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    x_low, x_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if integer:
        if low is not None:
            return math.ceil(low)
        if x_low is not None:
            return math.floor(x_low) + 1
        if high is not None and high < 0:
            return math.floor(high)
        if x_high is not None and x_high <= 0:
            return math.ceil(x_high) - 1
        return 0
    if low is not None:
        return low
    if x_low is not None:
        ceiling = high if high is not None else x_high
        return (x_low + ceiling) / 2 if ceiling is not None else x_low + 1
    if high is not None and high < 0:
        return high
    if x_high is not None and x_high <= 0:
        return x_high - 1
    return 0


def minimal(schema: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """The smallest value valid against ``schema``: required properties only, empty (or minItems)
    arrays, the first enum member, the lower bound of numbers, false, ""."""
    s = resolve(schema, root)
    if depth > _MAX_DEPTH:
        return None
    if "allOf" in s:
        s = _merged(s, root)
    if "const" in s:
        return s["const"]
    if isinstance(s.get("enum"), list) and s["enum"]:
        return s["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = s.get(key)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if _type_of(resolve(o, root)) not in (None, "null")), options[0])
            return minimal(chosen, root, depth + 1)
    kind = _type_of(s)
    if kind == "object":
        properties = s.get("properties", {})
        return {name: minimal(properties.get(name, {}), root, depth + 1) for name in s.get("required", [])}
    if kind == "array":
        count = int(s.get("minItems", 0))
        prefix = s.get("prefixItems", [])
        return [minimal(prefix[i] if i < len(prefix) else s.get("items", {}), root, depth + 1) for i in range(count)]
    if kind == "string":
        return "x" * int(s.get("minLength", 0))
    if kind in ("number", "integer"):
        return _bounded_number(s, kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return ""


class SchemaCheck:
    """Validation against one response schema and any of its sub-schemas ($refs resolve against the whole)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self._validator = Draft202012Validator(root)

    def errors(self, value: Any, schema: Any = None) -> list[str]:
        validator = self._validator if schema is None else self._validator.evolve(schema=schema)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(value)]

    def valid(self, value: Any, schema: Any = None) -> bool:
        return not self.errors(value, schema)


def _candidates(schema: dict[str, Any], value: Any, check: SchemaCheck, depth: int) -> list[Any]:
    s = resolve(schema, check.root)
    found: list[Any] = [value]
    kind = _type_of(s)
    if isinstance(value, str) and isinstance(s.get("enum"), list):
        found += [m for m in s["enum"] if isinstance(m, str) and m.lower() == value.lower()]
    if isinstance(value, str) and isinstance(s.get("maxLength"), int):
        found.append(value[: s["maxLength"]])
    if isinstance(value, int | float) and not isinstance(value, bool) and kind in ("number", "integer"):
        number: float = round(value) if kind == "integer" else value
        for bound, pick in (("minimum", max), ("maximum", min)):
            if isinstance(s.get(bound), int | float):
                number = pick(number, s[bound])
        found.append(number)
    if isinstance(value, dict) and kind == "object":
        found.append(fill(s, value, check, depth + 1))
    if isinstance(value, list) and kind == "array":
        limit = s.get("maxItems")
        items = value[:limit] if isinstance(limit, int) else value
        found.append([fit(s.get("items", {}), item, check, depth + 1) for item in items])
    return found


def fit(schema: Any, value: Any, check: SchemaCheck, depth: int = 0) -> Any:
    """``value`` (or a close variant: enum case, bounds, nested fills) when valid against ``schema``;
    else the schema's minimal value."""
    if depth <= _MAX_DEPTH:
        for candidate in _candidates(schema, value, check, depth):
            if candidate is not MISSING and check.valid(candidate, schema):
                return candidate
    return minimal(schema, check.root)


def fill(schema: Any, facts: dict[str, Any], check: SchemaCheck, depth: int = 0) -> dict[str, Any]:
    """An object for ``schema``: each property the facts name (when it fits), and a minimal value for
    every other required property."""
    s = resolve(schema, check.root)
    if "allOf" in s:
        s = _merged(s, check.root)
    properties: dict[str, Any] = s.get("properties", {})
    required = s.get("required", [])
    out: dict[str, Any] = {}
    for name, prop in properties.items():
        if name in facts:
            out[name] = fit(prop, facts[name], check, depth)
        elif name in required:
            out[name] = minimal(prop, check.root)
    for name in required:
        if name not in out:
            out[name] = minimal({}, check.root)
    return out


def broken(answer: dict[str, Any], check: SchemaCheck | None) -> dict[str, Any]:
    """A copy of ``answer`` that breaks its schema: direction "sideways" where an enum forbids it,
    else the first required property dropped (no schema: direction "sideways")."""
    out = dict(answer)
    if check is None:
        out["direction"] = "sideways"
        return out
    s = resolve(check.root, check.root)
    direction = resolve(s.get("properties", {}).get("direction"), check.root)
    if "direction" in out and isinstance(direction.get("enum"), list) and "sideways" not in direction["enum"]:
        out["direction"] = "sideways"
    elif s.get("required"):
        out.pop(s["required"][0], None)
    elif s.get("properties"):
        name, prop = next(iter(s["properties"].items()))
        out[name] = 12345 if _type_of(resolve(prop, check.root)) == "string" else "sideways"
    return out
