"""Every Gemini body built from the real client fixtures validates against the official
google-genai SDK's types (which forbid unknown fields)."""

from __future__ import annotations

import json

import pytest
from google.genai import types

from adapters import gemini
from adapters.request import ChatRequest
from tests.conftest import FIXTURES

SETTINGS = [
    ("gemini-3-flash-preview", {"thinkingLevel": "high"}),
    ("gemini-2.5-flash", {"thinkingBudget": 1024}),
]


@pytest.mark.parametrize(("model", "settings"), SETTINGS)
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_fixture_bodies_validate_against_google_genai_types(name, model, settings):
    body = json.loads((FIXTURES / name).read_text())["body"]
    built = gemini.build_chat_body(ChatRequest(body, model, settings))
    assert set(built) <= {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
    }
    for content in built["contents"]:
        types.Content.model_validate(content)
    if "systemInstruction" in built:
        types.Content.model_validate(built["systemInstruction"])
    for tool in built.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in built:
        types.ToolConfig.model_validate(built["toolConfig"])
    config = types.GenerationConfig.model_validate(built["generationConfig"])
    thinking = config.thinking_config
    assert (thinking.thinking_level is None) != (thinking.thinking_budget is None), "never both"


def test_unknown_field_is_rejected_by_the_sdk_types():
    with pytest.raises(ValueError, match=r"additionalProperties|extra"):
        types.FunctionDeclaration.model_validate({"name": "x", "additionalProperties": False})
