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


class EventBuffer:
    """Splits an SSE byte stream into the `data` of each event as bytes arrive, across any
    chunk boundaries (LF or CRLF line ends; multi-line data joined with newlines)."""

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        events = []
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events

    def close(self) -> list[bytes]:
        """Whatever complete event is left when the stream ends without a final blank line."""
        events = self.feed(b"\n\n") if self._pending or self._data else []
        return events


def json_events(stream: bytes) -> list[Any]:
    """The JSON value of every `data:` event of a whole stream ([DONE] and comments skipped;
    each event on one line, as OpenAI-compatible upstreams send them)."""
    events = []
    for line in stream.split(b"\n"):
        if line.startswith(b"data:") and line[5:].lstrip().startswith(b"{"):
            try:
                events.append(orjson.loads(line[5:]))
            except orjson.JSONDecodeError:
                continue
    return events
