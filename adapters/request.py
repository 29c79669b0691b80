"""What every adapter's request builder receives: the client's body and what the proxy knows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class RequestError(ValueError):
    """A client request that cannot be translated for the upstream; becomes a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """An OpenAI chat request on its way to one upstream model."""

    body: Mapping[str, Any]
    upstream_id: str
    settings: Mapping[str, Any] = field(default_factory=dict)  # the chosen variant's
    drop_params: Sequence[str] = ()
    stream: bool = False  # whether the upstream call streams
    images: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # url -> (mime, base64)
    signatures: Mapping[str, str] = field(default_factory=dict)  # tool call id -> signature
