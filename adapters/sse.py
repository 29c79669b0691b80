"""Server-sent events in OpenAI's streaming format: encoding chunks and the end marker."""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keepalive\n\n"


def encode(event: Any) -> bytes:
    """One `data:` event carrying a JSON value."""
    return b"data: " + orjson.dumps(event) + b"\n\n"


def ends_with_done(tail: bytes) -> bool:
    """True when the last bytes of a stream are its `data: [DONE]` event."""
    return tail.rstrip().endswith(b"data: [DONE]")


def last_json_events(tail: bytes, containing: bytes = b"") -> list[Any]:
    """The JSON values of the complete `data:` events found in a stream's last bytes,
    only those whose text holds `containing` when given (to skip parsing the rest)."""
    events = []
    for line in tail.split(b"\n"):
        if containing not in line:
            continue
        if line.startswith(b"data: {") or line.startswith(b"data:{"):
            try:
                events.append(orjson.loads(line[5:]))
            except orjson.JSONDecodeError:
                continue
    return events
