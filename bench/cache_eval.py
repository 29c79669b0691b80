"""Semantic cache evaluation (not a test): precision, recall and wrong hits on the labelled
pairs in tests/data/semantic_pairs.jsonl, over a threshold sweep, and lookup latency.

For each pair, question A is stored through the real ResponseCache and question B is looked up
with its own context; a hit on a paraphrase is right, a hit on a near-miss or a context pair is
a wrong answer served.

    .venv/bin/python bench/cache_eval.py [--embedder wordllama|ngram] [--threshold 0.95]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxy.cache import ResponseCache  # noqa: E402
from proxy.cachekeys import request_keys  # noqa: E402
from proxy.config import CacheConfig  # noqa: E402
from proxy.embedder import local_embedder  # noqa: E402
from proxy.guard import allows, normalise  # noqa: E402
from proxy.semantic import Entry, ScopeIndex  # noqa: E402

PAIRS = ROOT / "tests" / "data" / "semantic_pairs.jsonl"
SWEEP = (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95, 0.97, 0.99)
CHAIN = ("provider/model",)


class Log:
    def info(self, *args: Any, **kwargs: Any) -> None:
        pass

    error = info


def body(
    question: str, context: list[dict[str, Any]], system: str | None, params: dict[str, Any]
) -> dict[str, Any]:
    messages = ([{"role": "system", "content": system}] if system else []) + context
    return {"model": "m", "messages": [*messages, {"role": "user", "content": question}], **params}


def side(pair: dict[str, Any], name: str) -> dict[str, Any]:
    return body(
        pair[name],
        pair.get(f"context_{name}", []),
        pair.get(f"system_{name}"),
        pair.get(f"params_{name}", {}),
    )


def read_pairs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def score_pairs(embedder: Any, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Similarity, guard verdict and scope match of every pair (threshold-independent)."""
    rows = []
    for pair in pairs:
        a, b = request_keys(side(pair, "a"), CHAIN), request_keys(side(pair, "b"), CHAIN)
        qa, qb = normalise(pair["a"]), normalise(pair["b"])
        similarity = float((await embedder.embed(qa)) @ (await embedder.embed(qb)))
        rows.append(
            {
                **pair,
                "similarity": similarity,
                "guard": allows(qa, qb),
                "same_scope": a.scope == b.scope,
                "exact": a.exact == b.exact,
            }
        )
    return rows


async def through_cache(embedder: Any, threshold: float, pairs: list[dict[str, Any]]) -> list[bool]:
    """The served/not-served verdict of the real cache for every pair, one cache per pair."""
    served = []
    with tempfile.TemporaryDirectory() as tmp:
        config = CacheConfig(dir=tmp, similarityThreshold=threshold)
        for pair in pairs:
            cache = ResponseCache(config, embedder, Log())
            a, b = side(pair, "a"), side(pair, "b")
            plan_a = cache.plan({}, a, CHAIN)
            completion = {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "x"},
                        "finish_reason": "stop",
                    }
                ]
            }
            await cache.store(plan_a, completion, "provider", "provider/model")
            hit = await cache.lookup(cache.plan({}, b, CHAIN))
            served.append(hit is not None)
    return served


def summarise(rows: list[dict[str, Any]], hits: list[bool]) -> dict[str, Any]:
    paraphrases = [h for r, h in zip(rows, hits, strict=True) if r["label"] == "paraphrase"]
    wrong = Counter(
        r["category"] for r, h in zip(rows, hits, strict=True) if h and r["label"] != "paraphrase"
    )
    right = sum(paraphrases)
    served = right + sum(wrong.values())
    return {
        "served": served,
        "precision": right / served if served else 1.0,
        "recall": right / len(paraphrases),
        "wrong": sum(wrong.values()),
        "wrong_by_category": dict(wrong),
    }


def lookup_latency(embedder: Any, sizes: tuple[int, ...]) -> list[tuple[int, float, float]]:
    """p50/p99 of embed + search in one scope of `sizes` entries (random unit vectors)."""
    rng = np.random.default_rng(1)
    dim = len(asyncio.run(embedder.embed("probe")))
    questions = [f"how do I do task number {n} in python" for n in range(200)]
    results = []
    for size in sizes:
        index = ScopeIndex(dim)
        vectors = rng.standard_normal((size, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for vector in vectors:
            index.add(vector, Entry({}, 0.0, "", ""))
        timings = []
        for question in questions:
            started = time.perf_counter()
            query = embedder.embed_now(normalise(question))
            index.search(query, 0.95)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        results.append((size, statistics.median(timings), timings[int(0.99 * len(timings)) - 1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--embedder", default="wordllama", choices=["wordllama", "ngram"])
    parser.add_argument("--threshold", type=float, default=CacheConfig().similarityThreshold)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--show", action="store_true", help="list every pair the cache would serve")
    parser.add_argument(
        "--pairs", type=Path, default=PAIRS, help="a labelled pairs file (JSON lines)"
    )
    args = parser.parse_args()
    embedder = local_embedder(args.embedder)
    pairs = read_pairs(args.pairs)
    rows = asyncio.run(score_pairs(embedder, pairs))
    counts = Counter(r["label"] for r in rows)
    labels = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"pairs: {len(rows)} ({labels}); embedder {embedder.name}; {os.cpu_count()} cores")
    served = asyncio.run(through_cache(embedder, args.threshold, pairs))
    result = summarise(rows, served)
    print(f"\nat the configured threshold {args.threshold} (the real cache, pair by pair):")
    print(f"  served {result['served']}, precision {result['precision']:.1%}", end="")
    print(f", recall on paraphrases {result['recall']:.1%}, wrong hits {result['wrong']}", end="")
    print(f" {result['wrong_by_category'] or ''}")
    print(
        "\nsweep:             guard on                                  embedding alone (no guard)"
    )
    print("  threshold   precision  recall  wrong          precision  recall  wrong")
    for threshold in SWEEP:
        guarded = [r["same_scope"] and r["similarity"] >= threshold and r["guard"] for r in rows]
        bare = [r["same_scope"] and r["similarity"] >= threshold for r in rows]
        g, b = summarise(rows, guarded), summarise(rows, bare)
        guarded_cells = f"{g['precision']:8.1%}  {g['recall']:6.1%}  {g['wrong']:5d}"
        bare_cells = f"{b['precision']:8.1%}  {b['recall']:6.1%}  {b['wrong']:5d}"
        print(f"  {threshold:9.2f}   {guarded_cells}          {bare_cells}")
    if args.show:
        for row, hit in zip(rows, served, strict=True):
            if hit or row["label"] == "paraphrase":
                verdict = "HIT " if hit else "miss"
                scores = f"{row['similarity']:.3f} guard={row['guard']}"
                print(f"  {verdict} {row['label']:10} {scores} | {row['a']} | {row['b']}")
    print("\nlookup latency (normalise + embed + search in one scope):")
    print("  entries      p50 ms    p99 ms")
    for size, p50, p99 in lookup_latency(embedder, tuple(int(s) for s in args.sizes.split(","))):
        print(f"  {size:7d}   {p50:8.3f}  {p99:8.3f}")


if __name__ == "__main__":
    main()
