"""Tests for the SSE helpers: encoding, spotting [DONE], reading the last events."""

from __future__ import annotations

import pytest

from adapters import sse


def test_encode():
    assert sse.encode({"a": [1, "é"]}) == b'data: {"a":[1,"\xc3\xa9"]}\n\n'


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b'data: {"x":1}\n\ndata: [DONE]\n\n', True),
        (b"data: [DONE]", True),
        (b'data: {"x":1}\n\n', False),
        (b'data: {"text":"data: [DONE] is the marker"}\n\n', False),
        (b"", False),
    ],
)
def test_ends_with_done(tail, expected):
    assert sse.ends_with_done(tail) is expected


def test_last_json_events_skips_partial_and_markers():
    tail = b'": 3}\n\ndata: {"a":1}\n\n: keepalive\n\ndata:{"b":2}\n\ndata: [DONE]\n\n'
    assert sse.last_json_events(tail) == [{"a": 1}, {"b": 2}]


def test_last_json_events_only_those_containing_a_marker():
    tail = b'data: {"a":1}\n\ndata: {"usage":{"prompt_tokens":2}}\n\ndata: [DONE]\n\n'
    assert sse.last_json_events(tail, b'"usage"') == [{"usage": {"prompt_tokens": 2}}]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b'data: {"a":1}\n\ndata: {"b":2}\n\n'], [b'{"a":1}', b'{"b":2}']),
        ([b'data: {"a"', b":1}\r\n\r", b"\ndata: [DONE]\r\n\r\n"], [b'{"a":1}', b"[DONE]"]),
        ([b": keepalive\n\n", b"event: x\ndata: one\ndata: two\n\n"], [b"one\ntwo"]),
        ([b"data:nospace\n\n"], [b"nospace"]),
        ([b'data: {"tail":true}'], [b'{"tail":true}']),
    ],
)
def test_event_buffer(chunks, expected):
    buffer = sse.EventBuffer()
    events = [event for chunk in chunks for event in buffer.feed(chunk)]
    assert events + buffer.close() == expected
