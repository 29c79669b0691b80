"""structlog setup: one JSON line per event on stderr, secrets scrubbed from every line."""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import orjson
import structlog

from proxy.masking import Scrubber

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


class _ScrubbedWriter:
    """A structlog logger writing rendered lines to a stream after scrubbing secrets."""

    def __init__(self, stream: IO[bytes], scrubber: Scrubber) -> None:
        self._stream = stream
        self._scrubber = scrubber

    def msg(self, line: bytes | str) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self._stream.write(self._scrubber.scrub_bytes(data) + b"\n")
        self._stream.flush()

    debug = info = warning = warn = error = critical = exception = log = msg


def make_logger(
    level: str = "info",
    fmt: str = "json",
    secrets: list[str] | None = None,
    stream: IO[bytes] | None = None,
) -> Any:
    """A logger writing JSON (or console) lines to `stream` (stderr by default), secrets
    scrubbed from every line. Each server builds its own, so tests can run several."""
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    writer = _ScrubbedWriter(
        stream if stream is not None else sys.stderr.buffer, Scrubber(secrets or [])
    )
    return structlog.wrap_logger(
        writer,
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        cache_logger_on_first_use=True,
    )
