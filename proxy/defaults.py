"""The embedded default config: a provider for each key found in the environment, plus Zen's
free models, so `switchyard serve` works with no config file."""

from __future__ import annotations

from typing import Any

NIM_BASE_URL = "https://integrate.api.nvidia.com/v1"
ZEN_BASE_URL = "https://opencode.ai/zen/v1"

NIM_MODELS: dict[str, Any] = {
    "qwen-3.5-397b": {
        "id": "qwen/qwen3.5-397b-a17b",
        "limit": {"context": 262144, "output": 32768},
        "supports": {"streaming": False},
    },
    "llama-3.3-70b": {"id": "meta/llama-3.3-70b-instruct", "limit": {"context": 131072}},
}
ZEN_FREE_MODELS: dict[str, Any] = {"big-pickle": {}}
GEMINI_LIMIT = {"context": 1048576, "output": 65536}
GEMINI_MODELS: dict[str, Any] = {
    "gemini-3-flash": {
        "id": "gemini-3-flash-preview",
        "limit": GEMINI_LIMIT,
        "variants": {
            level: {"thinkingLevel": level} for level in ("minimal", "low", "medium", "high")
        },
    },
    "gemini-3-pro": {
        "id": "gemini-3-pro-preview",
        "limit": GEMINI_LIMIT,
        "variants": {level: {"thinkingLevel": level} for level in ("low", "high")},
    },
    "gemini-2.5-flash": {
        "limit": GEMINI_LIMIT,
        "variants": {"nothink": {"thinkingBudget": 0}, "high": {"thinkingBudget": 24576}},
    },
    "gemini-2.5-pro": {"limit": GEMINI_LIMIT, "variants": {"high": {"thinkingBudget": 32768}}},
}


def embedded_config(env: dict[str, str]) -> dict[str, Any]:
    """Raw config (before substitution) built from which keys `env` holds."""
    providers: dict[str, Any] = {}
    if env.get("NVIDIA_API_KEY"):
        providers["nvidia-nim"] = {
            "type": "openai",
            "baseURL": NIM_BASE_URL,
            "apiKeys": ["${NVIDIA_API_KEY}", "${NVIDIA_API_KEY_2:-}", "${NVIDIA_API_KEY_3:-}"],
            "timeout": 180,
            "rateLimit": {"rpm": 40},
            "dropParams": ["reasoning"],
            "models": NIM_MODELS,
        }
    if env.get("GEMINI_API_KEY"):
        providers["google"] = {
            "type": "gemini",
            "apiKeys": ["${GEMINI_API_KEY}", "${GEMINI_API_KEY_2:-}", "${GEMINI_API_KEY_3:-}"],
            "models": GEMINI_MODELS,
        }
    providers["opencode-zen"] = {
        "type": "openai",
        "baseURL": ZEN_BASE_URL,
        "apiKeys": ["${OPENCODE_API_KEY:-public}"],
        "models": ZEN_FREE_MODELS,
    }
    return {"providers": providers}
