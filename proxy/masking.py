"""Masking secrets for display and scrubbing them from any text that leaves the process."""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN_PATTERNS = re.compile(
    rb"(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    rb"|nvapi-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,}|ya29\.[0-9A-Za-z_-]{10,}"
    rb"|sk-[A-Za-z0-9_-]{16,}|1//0[0-9A-Za-z_-]{20,}"
)


def mask(secret: str) -> str:
    """A recognisable but useless form of a secret: `nvapi-…a1b2`, `…wxyz`, or `…`."""
    if len(secret) < 12:
        return "…"
    prefix = ""
    for sep in ("-", "_", "."):
        head, found, _ = secret.partition(sep)
        if found and 0 < len(head) <= 8:
            prefix = head + sep
            break
    return f"{prefix}…{secret[-4:]}"


class Scrubber:
    """Replaces known secrets (and anything shaped like a bearer token or API key) in text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._known = [(s.encode(), mask(s).encode()) for s in known]

    def scrub_bytes(self, data: bytes) -> bytes:
        for secret, masked in self._known:
            if secret in data:
                data = data.replace(secret, masked)
        return _TOKEN_PATTERNS.sub(_mask_match, data)

    def scrub(self, text: str) -> str:
        return self.scrub_bytes(text.encode()).decode()


def _mask_match(match: re.Match[bytes]) -> bytes:
    if match.group(1):
        token = match.group(0)[len(match.group(1)) :]
        return match.group(1) + mask(token.decode()).encode()
    return mask(match.group(0).decode()).encode()
