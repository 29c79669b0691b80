"""Text embedders for the semantic cache: WordLlama from its wheel with no network, hashed
character n-grams as the fallback, or an OpenAI-compatible /v1/embeddings upstream."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str

    async def embed(self, text: str) -> np.ndarray:
        """A unit-length float32 vector."""
        ...


def unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


class WordLlamaEmbedder:
    """WordLlama's 256-dim l2_supercat model, loaded from the files inside its wheel.

    `WordLlama.load()` looks for the tokenizer under `tokenizer/` while the wheel ships
    `tokenizers/`, and otherwise downloads; pointing its cache at the package directory and
    disabling downloads finds both files where the wheel put them."""

    name = "wordllama"

    def __init__(self) -> None:
        import wordllama
        from wordllama import WordLlama

        package = Path(wordllama.__file__).parent
        self._model = WordLlama.load(cache_dir=package, disable_download=True)

    def embed_now(self, text: str) -> np.ndarray:
        return unit(self._model.embed([text], norm=True)[0])

    async def embed(self, text: str) -> np.ndarray:
        return self.embed_now(text)  # about 20 us: cheaper than a thread hop


class NgramEmbedder:
    """Character 3- and 4-grams hashed into 512 buckets: no model, no dependency."""

    name = "ngram"
    dim = 512

    def embed_now(self, text: str) -> np.ndarray:
        padded = f" {text} "
        vector = np.zeros(self.dim, dtype=np.float32)
        for size in (3, 4):
            for start in range(len(padded) - size + 1):
                gram = padded[start : start + size].encode()
                bucket = zlib.crc32(gram)
                vector[bucket % self.dim] += 1.0 if bucket & 0x80000000 else -1.0
        return unit(vector)

    async def embed(self, text: str) -> np.ndarray:
        return self.embed_now(text)


class RemoteEmbedder:
    """Vectors from an OpenAI-compatible embeddings upstream (e.g. a NIM embedding model)."""

    def __init__(self, model: str, fetch: Callable[[str, str], Awaitable[list[float]]]) -> None:
        self.name = model
        self._fetch = fetch

    async def embed(self, text: str) -> np.ndarray:
        return unit(np.asarray(await self._fetch(self.name, text), dtype=np.float32))


def local_embedder(spec: str | None) -> Embedder:
    """`wordllama` (the default when it is installed) or `ngram`."""
    if spec in (None, "wordllama"):
        try:
            return WordLlamaEmbedder()
        except (ImportError, OSError, ValueError):
            if spec == "wordllama":
                raise
    return NgramEmbedder()
