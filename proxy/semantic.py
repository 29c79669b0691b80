"""One semantic scope's entries: unit vectors in a float32 matrix searched by brute force."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

INITIAL_ROWS = 16


@dataclass
class Entry:
    """A cached answer and what it answered."""

    completion: dict[str, Any]
    expires: float
    provider: str
    target: str
    text: str = ""  # the normalised question (semantic entries only)
    key: str = ""  # the exact key of the request it answered (semantic entries only)
    slot: int = -1

    def to_json(self) -> dict[str, Any]:
        return {
            "completion": self.completion,
            "expires": self.expires,
            "provider": self.provider,
            "target": self.target,
            "text": self.text,
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            data["completion"],
            data["expires"],
            data["provider"],
            data["target"],
            data.get("text", ""),
            data.get("key", ""),
        )


class ScopeIndex:
    """Rows of unit vectors, doubled when full; deleted rows are zeroed and compacted away."""

    def __init__(self, dim: int) -> None:
        self.vectors = np.zeros((INITIAL_ROWS, dim), dtype=np.float32)
        self.entries: list[Entry | None] = []
        self.deleted = 0

    @property
    def live(self) -> int:
        return len(self.entries) - self.deleted

    def add(self, vector: np.ndarray, entry: Entry) -> None:
        count = len(self.entries)
        if count == len(self.vectors):
            grown = np.zeros((count * 2, self.vectors.shape[1]), dtype=np.float32)
            grown[:count] = self.vectors
            self.vectors = grown
        self.vectors[count] = vector
        entry.slot = count
        self.entries.append(entry)

    def search(
        self, query: np.ndarray, threshold: float, top: int = 5
    ) -> list[tuple[float, Entry]]:
        """The best entries at or above `threshold`, best first."""
        count = len(self.entries)
        if not count:
            return []
        scores = self.vectors[:count] @ query
        best = np.argpartition(scores, -top)[-top:] if count > top else np.arange(count)
        found = []
        for slot in best[np.argsort(-scores[best])]:
            score = float(scores[slot])
            entry = self.entries[slot]
            if score < threshold:
                break
            if entry is not None:
                found.append((score, entry))
        return found

    def remove(self, entry: Entry) -> None:
        slot = entry.slot
        if 0 <= slot < len(self.entries) and self.entries[slot] is entry:
            self.entries[slot] = None
            self.vectors[slot] = 0.0
            self.deleted += 1
            if self.deleted > INITIAL_ROWS and self.deleted * 2 > len(self.entries):
                self.compact()

    def compact(self) -> None:
        keep = [i for i, entry in enumerate(self.entries) if entry is not None]
        rows = max(INITIAL_ROWS, 1 << max(len(keep) - 1, 0).bit_length())
        vectors = np.zeros((rows, self.vectors.shape[1]), dtype=np.float32)
        vectors[: len(keep)] = self.vectors[keep]
        self.vectors = vectors
        self.entries = [self.entries[i] for i in keep]
        for slot, entry in enumerate(self.entries):
            assert entry is not None
            entry.slot = slot
        self.deleted = 0

    def matrix_bytes(self) -> bytes:
        """The live rows in numpy's .npy format."""
        self.compact()
        buffer = io.BytesIO()
        np.save(buffer, self.vectors[: len(self.entries)], allow_pickle=False)
        return buffer.getvalue()
