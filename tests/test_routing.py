"""Model resolution per DESIGN section 4, and the /v1/models listing."""

from __future__ import annotations

import pytest

from proxy.config import parse
from proxy.routing import Router, UnknownModel

CONFIG = {
    "providers": {
        "nvidia-nim": {
            "type": "openai",
            "baseURL": "http://127.0.0.1:1/v1",
            "models": {
                "qwen-3.5-397b": {
                    "id": "qwen/qwen3.5-397b-a17b",
                    "limit": {"context": 262144, "output": 32768},
                    "variants": {"think": {"chat_template_kwargs": {"thinking": True}}},
                },
                "llama-3.3-70b": {"id": "meta/llama-3.3-70b-instruct"},
                "shared": {},
            },
        },
        "zen": {
            "type": "openai",
            "baseURL": "http://127.0.0.1:2/v1",
            "models": {"big-pickle": {}, "shared": {}, "llama3:8b": {}},
        },
        "ollama": {"type": "openai", "baseURL": "http://127.0.0.1:3/v1"},
    },
    "aliases": {
        "build": {
            "model": "nvidia-nim/qwen-3.5-397b:think",
            "fallbacks": ["zen/big-pickle", "llama-3.3-70b"],
        },
        "big-pickle": {"model": "nvidia-nim/llama-3.3-70b"},
    },
}


@pytest.fixture(scope="module")
def router():
    return Router(parse(CONFIG, {}))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (
            "build",
            [
                ("nvidia-nim/qwen-3.5-397b:think", "qwen/qwen3.5-397b-a17b"),
                ("zen/big-pickle", "big-pickle"),
                ("nvidia-nim/llama-3.3-70b", "meta/llama-3.3-70b-instruct"),
            ],
        ),
        ("big-pickle", [("nvidia-nim/llama-3.3-70b", "meta/llama-3.3-70b-instruct")]),
        ("zen/big-pickle", [("zen/big-pickle", "big-pickle")]),
        ("nvidia-nim/qwen-3.5-397b", [("nvidia-nim/qwen-3.5-397b", "qwen/qwen3.5-397b-a17b")]),
        (
            "nvidia-nim/qwen-3.5-397b:think",
            [("nvidia-nim/qwen-3.5-397b:think", "qwen/qwen3.5-397b-a17b")],
        ),
        (
            "nvidia-nim/qwen/qwen3.5-397b-a17b",
            [("nvidia-nim/qwen-3.5-397b", "qwen/qwen3.5-397b-a17b")],
        ),
        (
            "nvidia-nim/qwen/qwen3.5-397b-a17b:think",
            [("nvidia-nim/qwen-3.5-397b:think", "qwen/qwen3.5-397b-a17b")],
        ),
        ("qwen-3.5-397b", [("nvidia-nim/qwen-3.5-397b", "qwen/qwen3.5-397b-a17b")]),
        ("qwen-3.5-397b:think", [("nvidia-nim/qwen-3.5-397b:think", "qwen/qwen3.5-397b-a17b")]),
        ("zen/llama3:8b", [("zen/llama3:8b", "llama3:8b")]),
        ("llama3:8b", [("zen/llama3:8b", "llama3:8b")]),
        ("ollama/qwen2.5-coder:7b", [("ollama/qwen2.5-coder:7b", "qwen2.5-coder:7b")]),
    ],
)
def test_resolution_order(router, requested, expected):
    assert [(t.name, t.upstream_id) for t in router.resolve(requested)] == expected


def test_variant_settings_carried(router):
    (target,) = router.resolve("nvidia-nim/qwen-3.5-397b:think")
    assert target.settings == {"chat_template_kwargs": {"thinking": True}}
    assert target.variant == "think"


@pytest.mark.parametrize(
    ("requested", "message", "suggestions"),
    [
        (
            "qwen-3.5-379b",
            "model 'qwen-3.5-379b' not found; did you mean",
            ["nvidia-nim/qwen-3.5-397b"],
        ),
        ("nvidia-nim/qwen-3.5-397", "did you mean", ["nvidia-nim/qwen-3.5-397b"]),
        ("shared", "offered by several providers", ["nvidia-nim/shared", "zen/shared"]),
        ("gpt-5", "GET /v1/models lists", []),
        ("nvidia-nim/qwen-3.5-397b:turbo", "did you mean", ["nvidia-nim/qwen-3.5-397b:think"]),
        ("zen/", "not found", []),
    ],
)
def test_unknown_models(router, requested, message, suggestions):
    with pytest.raises(UnknownModel) as exc:
        router.resolve(requested)
    assert message in exc.value.message
    for name in suggestions:
        assert name in exc.value.suggestions


def test_listing_has_aliases_variants_and_limits(router):
    rows = {name: (owner, extra) for name, owner, extra in router.listing()}
    assert rows["build"][0] == "switchyard"
    assert rows["build"][1]["fallbacks"] == ["zen/big-pickle", "llama-3.3-70b"]
    assert rows["nvidia-nim/qwen-3.5-397b"][1]["limit"] == {"context": 262144, "output": 32768}
    assert rows["nvidia-nim/qwen-3.5-397b"][1]["variants"] == ["think"]
    assert rows["nvidia-nim/qwen-3.5-397b:think"][1]["limit"] == {
        "context": 262144,
        "output": 32768,
    }
    assert "nvidia-nim/qwen/qwen3.5-397b-a17b" not in rows
