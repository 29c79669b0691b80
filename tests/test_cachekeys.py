"""Exact keys, semantic scopes and what may be cached."""

from __future__ import annotations

import pytest

from proxy.cachekeys import cacheable, request_keys

CHAIN = ("nim/m",)
BASE = {
    "model": "alias",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi there"},
    ],
    "temperature": 0.2,
    "tools": [{"type": "function", "function": {"name": "read"}}],
}


def keys(**changes):
    return request_keys({**BASE, **changes}, CHAIN)


@pytest.mark.parametrize(
    "changes",
    [
        {"stream": True},
        {"stream_options": {"include_usage": True}},
        {"user": "u1"},
        {"metadata": {"a": 1}},
        {"model": "other-alias"},
        {"store": True},
    ],
)
def test_delivery_fields_do_not_change_the_keys(changes):
    assert keys(**changes) == keys()


@pytest.mark.parametrize(
    "changes",
    [
        {"temperature": 0.3},
        {"max_tokens": 10},
        {"tools": []},
        {"tool_choice": "none"},
        {
            "messages": [
                {"role": "system", "content": "be long"},
                {"role": "user", "content": "hi there"},
            ]
        },
        {"response_format": {"type": "json_object"}},
    ],
)
def test_generation_fields_change_exact_key_and_scope(changes):
    assert keys(**changes).exact != keys().exact
    assert keys(**changes).scope != keys().scope


def test_last_user_text_is_outside_the_scope():
    other = keys(messages=[BASE["messages"][0], {"role": "user", "content": "hello there"}])
    assert other.exact != keys().exact
    assert other.scope == keys().scope
    assert (keys().text, other.text) == ("hi there", "hello there")


def test_target_chain_is_part_of_both():
    assert request_keys(BASE, ("zen/m",)).exact != keys().exact
    assert request_keys(BASE, ("zen/m",)).scope != keys().scope


@pytest.mark.parametrize(
    "last",
    [
        {"role": "tool", "tool_call_id": "c", "content": "x"},
        {"role": "assistant", "content": "x"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": "data:,"}},
            ],
        },
        {"role": "user", "content": "   "},
    ],
)
def test_no_semantic_scope_without_a_plain_user_question(last):
    assert keys(messages=[*BASE["messages"], last]).scope is None


def test_text_parts_are_a_question():
    last = {
        "role": "user",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    assert keys(messages=[last]).text == "a\nb"


def answer(finish="stop", **message):
    return {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x", **message},
                "finish_reason": finish,
            }
        ]
    }


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (answer(), True),
        (answer("length"), False),
        (answer("content_filter"), False),
        (answer("tool_calls", tool_calls=[{"id": "c"}]), False),
        (answer("stop", tool_calls=[{"id": "c"}]), False),
        (answer(content=None), False),
        ({"choices": []}, False),
        (None, False),
    ],
)
def test_cacheable(completion, expected):
    assert cacheable(completion) is expected
