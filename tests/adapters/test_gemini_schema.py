"""Table-driven tests for cleaning tool JSON schemas into Gemini's Schema subset."""

from __future__ import annotations

import json

import pytest

from adapters.gemini_schema import KEPT, SchemaError, clean_schema
from tests.conftest import FIXTURES

S = {"type": "string"}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "$id": "x",
                "$comment": "c",
                "type": "object",
                "title": "Args",
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string", "default": "/", "examples": ["/a"], "x-kind": 1}
                },
            },
            {"type": "object", "properties": {"path": S}},
            id="dropped keywords",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {"title": S, "default": {"type": "integer"}},
                "required": ["title", "default"],
            },
            {
                "type": "object",
                "properties": {"title": S, "default": {"type": "integer"}},
                "required": ["title", "default"],
            },
            id="properties named like keywords are kept",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": S}, "required": ["a", "gone"]},
            {"type": "object", "properties": {"a": S}, "required": ["a"]},
            id="required pruned",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/$defs/Name"}},
                "$defs": {"Name": {"type": "string", "description": "a name"}},
            },
            {"type": "object", "properties": {"a": {"type": "string", "description": "a name"}}},
            id="$ref to $defs",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {"a": {"$ref": "#/definitions/N"}},
                "definitions": {"N": {"type": "integer"}},
            },
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            id="$ref to definitions",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {
                    "mode": {"const": "fast"},
                    "on": {"const": True},
                    "n": {"type": "integer", "const": 3},
                },
            },
            {
                "type": "object",
                "properties": {
                    "mode": {"enum": ["fast"], "type": "string"},
                    "on": {"description": "must be true", "type": "boolean"},
                    "n": {"description": "must be 3", "type": "integer"},
                },
            },
            id="const: string -> enum, others -> description",
        ),
        pytest.param(
            {
                "allOf": [
                    {"type": "object", "properties": {"a": S}, "required": ["a"]},
                    {"properties": {"b": S}, "required": ["b"]},
                ]
            },
            {"type": "object", "properties": {"a": S, "b": S}, "required": ["a", "b"]},
            id="allOf merged",
        ),
        pytest.param(
            {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "maybe"},
            {"type": "string", "description": "maybe", "nullable": True},
            id="nullable anyOf flattened",
        ),
        pytest.param(
            {"type": ["integer", "null"], "minimum": 0, "exclusiveMinimum": 0},
            {"type": "integer", "minimum": 0, "nullable": True},
            id="type array with null; exclusiveMinimum dropped",
        ),
        pytest.param(
            {"type": ["string", "integer"]},
            {"anyOf": [S, {"type": "integer"}]},
            id="type array of two -> anyOf",
        ),
        pytest.param(
            {"oneOf": [{"type": "string"}, {"type": "object", "properties": {"x": S}}]},
            {"anyOf": [S, {"type": "object", "properties": {"x": S}}]},
            id="oneOf -> anyOf",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {
                    "opts": {"type": "object", "additionalProperties": {"type": "string"}}
                },
            },
            {
                "type": "object",
                "properties": {
                    "opts": {
                        "type": "object",
                        "properties": {"_": {"type": "string", "description": "unused"}},
                    }
                },
            },
            id="empty object gets a usable shape",
        ),
        pytest.param(
            {"type": "array"},
            {"type": "array", "items": S},
            id="array without items",
        ),
        pytest.param(
            {"type": "integer", "enum": [1, 2, 3]},
            {"type": "integer", "description": "one of: 1, 2, 3"},
            id="non-string enum -> description",
        ),
        pytest.param(
            {"type": "string", "format": "uri", "pattern": "^h", "minLength": 1},
            {"type": "string", "pattern": "^h", "minLength": 1},
            id="unsupported format dropped",
        ),
        pytest.param(
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date-time"},
            id="date-time kept",
        ),
        pytest.param(
            {
                "if": {"type": "string"},
                "then": S,
                "else": S,
                "deprecated": True,
                "propertyNames": S,
                "patternProperties": {},
            },
            {"type": "string"},
            id="conditionals dropped; untyped -> string",
        ),
    ],
)
def test_clean_schema(schema, expected):
    assert clean_schema(schema) == expected


def test_unresolvable_ref():
    with pytest.raises(SchemaError, match=r"cannot resolve \$ref .https://x/y\.json."):
        clean_schema({"type": "object", "properties": {"a": {"$ref": "https://x/y.json"}}})


def test_recursive_ref_terminates():
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
    }
    cleaned = clean_schema(schema)
    assert cleaned["type"] == "object"
    assert json.dumps(cleaned).count('"child"') > 3


def _keywords(schema, path="$"):
    """Every keyword used anywhere in a cleaned schema (property names excluded)."""
    found = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key == "properties":
                for sub in value.values():
                    found |= _keywords(sub)
            elif key in ("items",):
                found |= _keywords(value)
            elif key == "anyOf":
                for sub in value:
                    found |= _keywords(sub)
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_fixture_tool_schema_cleans_to_gemini_keywords(name):
    body = json.loads((FIXTURES / name).read_text())["body"]
    for tool in body.get("tools", []):
        cleaned = clean_schema(tool["function"]["parameters"])
        assert _keywords(cleaned) <= KEPT, tool["function"]["name"]
