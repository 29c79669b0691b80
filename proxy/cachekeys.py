"""What identifies a cached answer: the exact key of a whole request, and the semantic scope
(everything but the last user message's text) with that text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

# Fields that change how an answer is delivered or billed, not what it says.
NOT_IN_KEY = frozenset(
    {"model", "messages", "stream", "stream_options", "user", "metadata", "store",
     "service_tier", "prompt_cache_key", "safety_identifier"}
)  # fmt: skip
_SORTED = orjson.OPT_SORT_KEYS


@dataclass(frozen=True)
class Keys:
    exact: str
    scope: str | None  # None: the request cannot be looked up semantically
    text: str | None  # the last user message's text


def last_user_text(message: Any) -> str | None:
    """The text of a user message made only of text (no images, no files), else None."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content if content.strip() else None
    if isinstance(content, list) and content:
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                return None
            texts.append(str(part.get("text", "")))
        text = "\n".join(texts)
        return text if text.strip() else None
    return None


def request_keys(body: dict[str, Any], chain: tuple[str, ...]) -> Keys:
    """Keys for a chat request whose model resolved to `chain` (target names in order).
    The shared part (targets, parameters, earlier messages) is hashed once for both keys, with
    128-bit XXH3: 50x cheaper than SHA-256 on a 30 KB agent request, and a chance collision
    among a cache's entries is negligible (~n^2 / 2^129)."""
    params = {k: v for k, v in body.items() if k not in NOT_IN_KEY}
    messages = body["messages"]
    shared = xxhash.xxh3_128(orjson.dumps({"targets": chain, "params": params}, option=_SORTED))
    shared.update(b"\x00")
    shared.update(orjson.dumps(messages[:-1], option=_SORTED))
    shared.update(b"\x00")
    last = messages[-1]
    exact = shared.copy()
    exact.update(orjson.dumps(last, option=_SORTED))
    text = last_user_text(last)
    if text is None:
        return Keys(exact.hexdigest(), None, None)
    scope = shared
    scope.update(orjson.dumps({k: v for k, v in last.items() if k != "content"}, option=_SORTED))
    return Keys(exact.hexdigest(), scope.hexdigest(), text)


def cacheable(completion: Any) -> bool:
    """Only finished text answers are kept: every choice stopped, none called a tool."""
    if not isinstance(completion, dict):
        return False
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if choice.get("finish_reason") != "stop" or not isinstance(message, dict):
            return False
        if message.get("tool_calls") or message.get("function_call"):
            return False
        if not isinstance(message.get("content"), str):
            return False
    return True
