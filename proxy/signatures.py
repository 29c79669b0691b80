"""Gemini thought signatures by tool call id, so a client that echoes only the id still sends
Gemini 3 the signature it requires; bounded, and kept across restarts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from proxy.store import StateStore

MAX_SIGNATURES = 20_000


class SignatureStore:
    def __init__(self, path: Path, delay: float, log: Any) -> None:
        self._writer = StateStore(path, delay, log, section="signatures")
        self._cache: LRUCache[str, str] = LRUCache(MAX_SIGNATURES)
        for call_id, signature in self._writer.load().items():
            if isinstance(signature, str):
                self._cache[call_id] = signature
        self._writer.snapshot = lambda: dict(self._cache)

    @property
    def known(self) -> Mapping[str, str]:
        return self._cache

    def remember(self, signatures: Mapping[str, str]) -> None:
        if signatures:
            self._cache.update(signatures)
            self._writer.changed()

    async def close(self) -> None:
        await self._writer.close()
