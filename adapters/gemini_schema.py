"""JSON Schema (as OpenAI tools carry it) -> the OpenAPI subset Gemini's `Schema` accepts."""

from __future__ import annotations

import json
from typing import Any

# Keywords Gemini's Schema object understands; everything else is dropped.
KEPT = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
        "propertyOrdering",
        "minProperties",
        "maxProperties",
    }
)
FORMATS = {
    "string": {"enum", "date-time"},
    "integer": {"int32", "int64"},
    "number": {"float", "double"},
}
TYPES = ("string", "number", "integer", "boolean", "array", "object")
PLACEHOLDER_PROPERTY = "_"
MAX_DEPTH = 32


class SchemaError(ValueError):
    """A schema that cannot be expressed for Gemini (e.g. a $ref that leads nowhere)."""


def clean_schema(schema: Any) -> dict[str, Any]:
    """A Gemini-valid copy of a tool's JSON schema: local $refs resolved, allOf merged,
    nullable unions flattened, const -> enum, unknown keywords dropped, required pruned."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _clean(schema, definitions, 0)


def _resolve(node: dict[str, Any], definitions: dict[str, Any], depth: int) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix) and ref[len(prefix) :] in definitions:
            target = definitions[ref[len(prefix) :]]
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _resolve(merged, definitions, depth + 1) if depth < MAX_DEPTH else target
    raise SchemaError(
        f"cannot resolve $ref {ref!r}: only local #/$defs/... references are supported"
    )


def _merge_all_of(node: dict[str, Any], definitions: dict[str, Any], depth: int) -> dict[str, Any]:
    parts = node.get("allOf")
    if not isinstance(parts, list):
        return node
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for part in parts:
        if not isinstance(part, dict):
            continue
        part = _merge_all_of(_resolve(part, definitions, depth), definitions, depth + 1)
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _note(node: dict[str, Any], text: str) -> None:
    described = node.get("description")
    node["description"] = f"{described} ({text})" if described else text


def _clean(schema: Any, definitions: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return {"type": "string"}
    node = _merge_all_of(_resolve(schema, definitions, depth), definitions, depth)
    out: dict[str, Any] = {}
    nullable = node.get("nullable") is True

    kind = node.get("type")
    if isinstance(kind, list):
        types = [t for t in kind if t != "null"]
        nullable = nullable or len(types) < len(kind)
        if len(types) == 1:
            kind = types[0]
        elif types:
            others = {k: v for k, v in node.items() if k != "type"}
            union = {"anyOf": [{**others, "type": t} for t in types]}
            return _finish_union(union, definitions, depth, nullable, node)
        else:
            kind = None

    union = node.get("anyOf") if isinstance(node.get("anyOf"), list) else node.get("oneOf")
    if isinstance(union, list):
        members = [m for m in union if not (isinstance(m, dict) and m.get("type") == "null")]
        nullable = nullable or len(members) < len(union)
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        if len(members) == 1:
            merged = {**rest, **_resolve(members[0], definitions, depth)}
            cleaned = _clean(merged, definitions, depth + 1)
            if nullable:
                cleaned["nullable"] = True
            return cleaned
        return _finish_union({"anyOf": members}, definitions, depth, nullable, rest)

    if "const" in node:
        const = node["const"]
        if isinstance(const, str):
            out["enum"] = [const]
            kind = "string"
        else:
            _note(out, f"must be {json.dumps(const)}")
            kind = kind or _json_type(const)

    if isinstance(node.get("description"), str):
        described = node["description"]
        out["description"] = (
            f"{described} ({out['description']})" if "description" in out else described
        )

    if isinstance(node.get("enum"), list) and "enum" not in out:
        values = node["enum"]
        if all(isinstance(v, str) for v in values):
            out["enum"] = list(values)
            kind = "string"
        else:
            _note(out, "one of: " + ", ".join(json.dumps(v) for v in values))

    if kind is None:
        if "properties" in node:
            kind = "object"
        elif "items" in node:
            kind = "array"
    if kind in TYPES:
        out["type"] = kind

    if kind == "object":
        properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        cleaned = {name: _clean(sub, definitions, depth + 1) for name, sub in properties.items()}
        if not cleaned:
            cleaned = {PLACEHOLDER_PROPERTY: {"type": "string", "description": "unused"}}
        out["properties"] = cleaned
        required = node.get("required")
        if isinstance(required, list):
            kept = [r for r in required if isinstance(r, str) and r in cleaned]
            if kept:
                out["required"] = list(dict.fromkeys(kept))
    elif kind == "array":
        out["items"] = _clean(node.get("items", {"type": "string"}), definitions, depth + 1)

    for key in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
        if isinstance(node.get(key), int) and not isinstance(node.get(key), bool):
            out[key] = node[key]
    for key in ("minimum", "maximum"):
        if isinstance(node.get(key), int | float) and not isinstance(node.get(key), bool):
            out[key] = node[key]
    if isinstance(node.get("pattern"), str) and kind == "string":
        out["pattern"] = node["pattern"]
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in FORMATS.get(str(kind), ()):
        out["format"] = fmt
    if nullable:
        out["nullable"] = True
    if "type" not in out and "anyOf" not in out:
        out["type"] = "string"
    return out


def _finish_union(
    union: dict[str, Any],
    definitions: dict[str, Any],
    depth: int,
    nullable: bool,
    rest: dict[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "anyOf": [_clean(member, definitions, depth + 1) for member in union["anyOf"]]
    }
    if isinstance(rest.get("description"), str):
        out["description"] = rest["description"]
    if nullable:
        out["nullable"] = True
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"
