"""The response cache: tiers, eligibility, request controls, TTL and size eviction,
persistence across restarts, and the offline embedder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from proxy.cache import ResponseCache, read_stats
from proxy.config import CacheConfig
from proxy.embedder import NgramEmbedder, WordLlamaEmbedder, local_embedder
from proxy.semantic import Entry, ScopeIndex

CHAIN = ("nim/m",)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Log:
    def info(self, *args, **kwargs):
        pass

    error = info


@pytest.fixture(scope="module")
def wordllama():
    return WordLlamaEmbedder()


def make_cache(tmp_path, embedder, clock=None, **settings):
    config = CacheConfig(dir=str(tmp_path / "cache"), **settings)
    return ResponseCache(config, embedder, Log(), clock or Clock())


def ask(question, system="be brief", **params):
    return {
        "model": "m",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        **params,
    }


def answer(text="cached answer", finish="stop"):
    return {
        "id": "chatcmpl-1",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


async def store(cache, body, completion=None, headers=None):
    plan = cache.plan(headers or {}, body, CHAIN)
    return plan is not None and await cache.store(plan, completion or answer(), "nim", "nim/m")


async def lookup(cache, body, headers=None):
    plan = cache.plan(headers or {}, body, CHAIN)
    return None if plan is None else await cache.lookup(plan)


async def test_exact_and_semantic_tiers(tmp_path, wordllama):
    cache = make_cache(tmp_path, wordllama)
    assert await store(cache, ask("How do I reverse a string in Python?"))
    exact = await lookup(cache, ask("How do I reverse a string in Python?", stream=True, user="u"))
    assert (exact.tier, exact.similarity) == ("hit", None)
    semantic = await lookup(cache, ask("how can I reverse a string in python"))
    assert semantic.tier == "semantic-hit" and semantic.similarity >= 0.95
    assert semantic.entry.completion["choices"][0]["message"]["content"] == "cached answer"


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        (ask("Sort a list ascending in Python"), ask("Sort a list descending in Python")),
        (ask("Convert Celsius to Fahrenheit"), ask("Convert Fahrenheit to Celsius")),
        (ask("How far is 5 miles in km?"), ask("How far is 50 miles in km?")),
        (
            ask("How do I reverse a string in Python?"),
            ask("How do I reverse a string in Python?", system="Answer in French"),
        ),
        (
            ask("How do I reverse a string in Python?"),
            ask("How do I reverse a string in Python?", max_tokens=5),
        ),
        (
            ask("How do I reverse a string in Python?"),
            ask("how can I reverse a string in python", temperature=0.9),
        ),
    ],
    ids=[
        "guard: direction",
        "guard: order",
        "guard: numbers",
        "scope: system",
        "scope: params",
        "temperature",
    ],
)
async def test_no_wrong_hits(tmp_path, wordllama, stored, asked):
    cache = make_cache(tmp_path, wordllama)
    await store(cache, stored)
    assert await lookup(cache, asked) is None


async def test_semantic_opt_in_header_ignores_temperature(tmp_path, wordllama):
    cache = make_cache(tmp_path, wordllama)
    await store(
        cache,
        ask("How do I reverse a string in Python?", temperature=0.9),
        headers={"x-switchyard-cache": "semantic"},
    )
    hit = await lookup(
        cache,
        ask("how can I reverse a string in python", temperature=0.9),
        {"x-switchyard-cache": "semantic"},
    )
    assert hit is not None and hit.tier == "semantic-hit"


@pytest.mark.parametrize(
    ("completion", "kept"),
    [
        (answer(), True),
        (answer(finish="length"), False),
        (
            {
                **answer(),
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [{"id": "c"}],
                        },
                        "finish_reason": "tool_calls",
                    }
                ],
            },
            False,
        ),
    ],
)
async def test_only_finished_text_answers_are_stored(tmp_path, wordllama, completion, kept):
    cache = make_cache(tmp_path, wordllama)
    assert await store(cache, ask("q"), completion) is kept
    assert (await lookup(cache, ask("q")) is not None) is kept


@pytest.mark.parametrize(
    ("headers", "same_question", "paraphrase", "stored"),
    [
        ({}, "hit", "semantic-hit", True),
        ({"Cache-Control": "no-cache"}, None, None, True),
        ({"Cache-Control": "no-store"}, "hit", "semantic-hit", False),
        ({"x-switchyard-cache": "off"}, None, None, False),
        ({"x-switchyard-cache": "exact"}, "hit", None, True),
        ({"x-switchyard-cache": "semantic"}, "semantic-hit", "semantic-hit", True),
    ],
)
async def test_request_controls(tmp_path, wordllama, headers, same_question, paraphrase, stored):
    cache = make_cache(tmp_path, wordllama)
    await store(cache, ask("How do I exit vim?"))
    hit = await lookup(cache, ask("How do I exit vim?"), headers)
    assert (hit.tier if hit else None) == same_question
    hit = await lookup(cache, ask("how can I exit vim"), headers)
    assert (hit.tier if hit else None) == paraphrase
    fresh = make_cache(tmp_path / "other", wordllama)
    await store(fresh, ask("What is a monad?"), headers=headers)
    assert (await lookup(fresh, ask("What is a monad?")) is not None) is stored


async def test_ttl_eviction(tmp_path, wordllama):
    clock = Clock()
    cache = make_cache(tmp_path, wordllama, clock, ttl=60)
    await store(cache, ask("How do I exit vim?"))
    clock.now += 59
    assert await lookup(cache, ask("How do I exit vim?")) is not None
    assert await lookup(cache, ask("how can I exit vim")) is not None
    clock.now += 2
    assert await lookup(cache, ask("How do I exit vim?")) is None
    assert await lookup(cache, ask("how can I exit vim")) is None
    assert cache.counts() == {"exact": 0, "semantic": 0}


async def test_size_eviction_keeps_the_newest(tmp_path, wordllama):
    cache = make_cache(tmp_path, wordllama, maxSize=3)
    questions = [
        "How do I exit vim?",
        "What is a monad?",
        "How do I undo a git commit?",
        "What is a closure in JavaScript?",
    ]
    for question in questions:
        await store(cache, ask(question))
    assert cache.counts() == {"exact": 3, "semantic": 3}
    assert await lookup(cache, ask(questions[0])) is None
    assert await lookup(cache, ask("how can I exit vim")) is None
    assert await lookup(cache, ask(questions[3])) is not None


async def test_persisted_across_restart(tmp_path, wordllama):
    clock = Clock()
    cache = make_cache(tmp_path, wordllama, clock)
    await store(cache, ask("How do I exit vim?"))
    await store(cache, ask("What is a monad?", system="You teach Haskell."))
    assert await lookup(cache, ask("How do I exit vim?"))
    await cache.close()
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert "exact.json" in files and "stats.json" in files
    assert len([f for f in files if f.endswith(".npy")]) == 2
    restarted = make_cache(tmp_path, wordllama, clock)
    restarted.load()
    assert restarted.counts() == {"exact": 2, "semantic": 2}
    assert (await lookup(restarted, ask("How do I exit vim?"))).tier == "hit"
    assert (
        await lookup(restarted, ask("what's a monad", system="You teach Haskell."))
    ).tier == "semantic-hit"
    stats = read_stats(tmp_path / "cache")
    assert stats["entries"] == {"exact": 2, "semantic": 2}
    assert stats["hits"]["exact"] == 1 and stats["disk_bytes"] > 0
    clock.now += 3601
    expired = make_cache(tmp_path, wordllama, clock)
    expired.load()
    assert expired.counts() == {"exact": 0, "semantic": 0}


def test_scope_index_grows_by_doubling_and_compacts():
    index = ScopeIndex(4)
    entries = []
    for n in range(40):
        vector = np.zeros(4, dtype=np.float32)
        vector[n % 4] = 1.0
        entry = Entry({"n": n}, 0.0, "p", "t")
        index.add(vector, entry)
        entries.append(entry)
    assert len(index.vectors) == 64
    for entry in entries[:30]:
        index.remove(entry)
    assert index.live == 10
    assert len(index.entries) == 19 and index.deleted == 9, "compacted when 21 of 40 were deleted"
    found = index.search(np.array([1, 0, 0, 0], dtype=np.float32), 0.99)
    assert sorted(e.completion["n"] for _, e in found) == [32, 36]


async def test_ngram_fallback_embedder(tmp_path):
    embedder = NgramEmbedder()
    vector = await embedder.embed("how do i exit vim")
    assert vector.shape == (512,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    cache = make_cache(tmp_path, embedder, similarityThreshold=0.8)
    await store(cache, ask("How do I exit vim?"))
    assert (await lookup(cache, ask("how do I exit vim"))).tier == "semantic-hit"
    assert await lookup(cache, ask("How do I exit emacs?")) is None


def test_unknown_local_embedder_falls_back_to_ngrams():
    assert local_embedder("ngram").name == "ngram"


def test_wordllama_loads_with_no_network(tmp_path):
    """Every socket is refused and Hugging Face is unreachable; the model still loads from the
    files in its wheel and embeds."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled for this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from proxy.embedder import WordLlamaEmbedder
        embedder = WordLlamaEmbedder()
        a = embedder.embed_now("how do i exit vim")
        b = embedder.embed_now("how can i exit vim")
        print(a.shape[0], round(float(a @ b), 2) > 0.9)
        """
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "XDG_CACHE_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["256", "True"]
    assert not (tmp_path / ".cache" / "wordllama").exists(), "nothing was downloaded"


async def test_the_same_request_again_refreshes_instead_of_adding_a_row(tmp_path, wordllama):
    cache = make_cache(tmp_path, wordllama)
    for text in ("first", "second", "third"):
        await store(cache, ask("How do I exit vim?"), answer(text))
    assert cache.counts() == {"exact": 1, "semantic": 1}
    hit = await lookup(cache, ask("how can I exit vim"))
    assert hit.entry.completion["choices"][0]["message"]["content"] == "third"


async def test_unwritable_cache_dir_is_logged_not_fatal(tmp_path, wordllama):
    events = []

    class Recorder(Log):
        def error(self, event, **fields):
            events.append((event, fields))

    (tmp_path / "cache").write_text("a file where the directory should be")
    cache = ResponseCache(CacheConfig(dir=str(tmp_path / "cache")), wordllama, Recorder(), Clock())
    assert await store(cache, ask("How do I exit vim?"))
    await cache.close()
    assert events and events[0][0] == "cache_write_failed"
    assert (await lookup(cache, ask("How do I exit vim?"))).tier == "hit", (
        "still serves from memory"
    )
