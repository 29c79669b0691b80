"""Account pool rules: selection, cooldowns, daily budgets, pacing, disables, headers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from proxy.accounts import Account, provider_accounts
from proxy.config import ProviderConfig
from proxy.pool import AccountState, Pool, PoolExhausted

KEYS = ["key-aaaaaaaaaaaa1111", "key-bbbbbbbbbbbb2222", "key-cccccccccccc3333"]


class Clock:
    def __init__(self, now: float = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_pool(clock=None, keys=KEYS, saved=None, **rate_limit) -> tuple[Pool, list]:
    provider = ProviderConfig.model_validate(
        {
            "type": "openai",
            "baseURL": "http://127.0.0.1:1/v1",
            "apiKeys": keys,
            "rateLimit": rate_limit,
        }
    )
    events: list = []
    pool = Pool(
        "nim",
        provider,
        provider_accounts("nim", keys),
        saved,
        clock=clock or Clock(),
        on_event=lambda event, **fields: events.append((event, fields)),
    )
    return pool, events


async def take(pool, session=None, family="*", exclude=None):
    pooled = await pool.acquire(session, family, exclude or set())
    pool.clock.now += 1  # type: ignore[attr-defined]
    return pooled.account.key


async def test_least_recently_used_first():
    pool, _ = make_pool()
    assert [await take(pool) for _ in range(6)] == KEYS + KEYS


async def test_sticky_session_keeps_its_account_while_usable():
    pool, _ = make_pool()
    first = await take(pool, "s1")
    assert [await take(pool, "s1") for _ in range(5)] == [first] * 5
    other = await take(pool, "s2")
    assert other != first
    pool.cool_down(pool.find(Account("nim", first).id), "*", 30)
    moved = await take(pool, "s1")
    assert moved != first
    assert await take(pool, "s1") == moved, "the session stays where it moved"


async def test_excluded_accounts_are_skipped():
    pool, _ = make_pool()
    ids = {Account("nim", KEYS[0]).id, Account("nim", KEYS[1]).id}
    assert await take(pool, exclude=ids) == KEYS[2]


@pytest.mark.parametrize(
    ("hints", "expected_seconds"),
    [
        ([None], [60]),
        ([None, None, None], [60, 120, 240]),
        ([None] * 7, [60, 120, 240, 480, 960, 1800, 1800]),
        ([34.0], [34]),
        ([None, 5.0, None], [60, 5, 240]),
    ],
)
def test_cooldown_seconds(hints, expected_seconds):
    pool, events = make_pool()
    pooled = pool.accounts[0]
    assert [pool.cool_down(pooled, "*", hint) for hint in hints] == expected_seconds
    assert events[-1][0] == "account_cooldown"
    assert events[-1][1]["account"] == "key-…1111"


async def test_success_resets_the_doubling():
    pool, _ = make_pool()
    pooled = pool.accounts[0]
    pool.cool_down(pooled, "*", None)
    pool.succeeded(pooled, "*")
    assert pool.cool_down(pooled, "*", None) == 60


async def test_cooling_accounts_are_skipped_until_reset():
    clock = Clock()
    pool, _ = make_pool(clock)
    for pooled in pool.accounts[:2]:
        pool.cool_down(pooled, "*", 30)
    assert {await take(pool) for _ in range(3)} == {KEYS[2]}
    clock.now += 30
    assert {await take(pool) for _ in range(3)} == set(KEYS)


async def test_family_cooldown_leaves_other_families_usable():
    pool, _ = make_pool(keys=KEYS[:1])
    pool.cool_down(pool.accounts[0], "claude", 100)
    assert await take(pool, family="gemini") == KEYS[0]
    with pytest.raises(PoolExhausted) as exc:
        await pool.acquire(None, "claude", set())
    assert exc.value.reason == "cooling"
    pool.cool_down(pool.accounts[0], "*", 10)
    with pytest.raises(PoolExhausted):
        await pool.acquire(None, "gemini", set())


async def test_exhausted_pool_reports_earliest_reset():
    clock = Clock()
    pool, _ = make_pool(clock)
    for pooled, seconds in zip(pool.accounts, (300, 45, 120), strict=True):
        pool.cool_down(pooled, "*", seconds)
    with pytest.raises(PoolExhausted) as exc:
        await pool.acquire(None, "*", set())
    assert exc.value.retry_after == pytest.approx(45)
    assert "usable again in 45s" in exc.value.message


async def test_daily_budget_resets_at_the_providers_midnight():
    # 2026-11-26 07:30 UTC is 23:30 on the 25th in Los Angeles.
    clock = Clock(datetime(2026, 11, 26, 7, 30, tzinfo=UTC).timestamp())
    pool, _ = make_pool(clock, keys=KEYS[:1], rpd=2, timezone="America/Los_Angeles")
    await take(pool)
    await take(pool)
    with pytest.raises(PoolExhausted) as exc:
        await pool.acquire(None, "*", set())
    assert exc.value.retry_after == pytest.approx(30 * 60 - 2)
    clock.now += 30 * 60
    assert await take(pool) == KEYS[0]
    assert pool.describe()[0]["requests_today"] == 1


def test_next_day_start_utc_default():
    pool, _ = make_pool()
    noon = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
    assert pool.next_day_start(noon) == datetime(2026, 11, 27, tzinfo=UTC).timestamp()


async def test_pacing_spaces_requests_per_account():
    pool, _ = make_pool(keys=KEYS[:1], rpm=600, maxWait=5)  # one every 0.1 s
    started = time.monotonic()
    for _ in range(4):
        await pool.acquire(None, "*", set())
    assert time.monotonic() - started >= 0.29


async def test_pacing_gives_up_after_max_wait():
    pool, _ = make_pool(keys=KEYS[:1], rpm=1, maxWait=0.1)
    await pool.acquire(None, "*", set())
    started = time.monotonic()
    with pytest.raises(PoolExhausted) as exc:
        await pool.acquire(None, "*", set())
    assert exc.value.reason == "paced"
    assert 0.09 <= time.monotonic() - started < 1


async def test_waiters_spread_over_accounts():
    pool, _ = make_pool(rpm=120, maxWait=5)  # 0.5 s per account
    chosen = await asyncio.gather(*(pool.acquire(None, "*", set()) for _ in range(9)))
    counts = {key: sum(1 for p in chosen if p.account.key == key) for key in KEYS}
    assert counts == dict.fromkeys(KEYS, 3)


async def test_disabled_accounts_stay_out():
    pool, events = make_pool(keys=KEYS[:2])
    pool.disable(pool.accounts[0], "unauthorized")
    assert {await take(pool) for _ in range(3)} == {KEYS[1]}
    pool.disable(pool.accounts[1], "suspended: ToS")
    with pytest.raises(PoolExhausted) as exc:
        await pool.acquire(None, "*", set())
    assert exc.value.reason == "disabled"
    assert "suspended: ToS" in exc.value.message and "unauthorized" in exc.value.message
    assert pool.counts() == {"accounts": 2, "usable": 0, "cooling": 0, "disabled": 2}
    assert events[0] == (
        "account_disabled",
        {"provider": "nim", "account": "key-…1111", "reason": "unauthorized"},
    )


async def test_state_round_trips_and_changed_key_starts_clean():
    clock = Clock()
    pool, _ = make_pool(clock)
    pool.cool_down(pool.accounts[0], "*", 100)
    pool.disable(pool.accounts[1], "unauthorized")
    await take(pool)
    saved = pool.snapshot()
    restored, _ = make_pool(clock, saved=saved)
    assert restored.describe() == pool.describe()
    replaced, _ = make_pool(clock, keys=["key-newnewnewnew4444", *KEYS[1:]], saved=saved)
    assert replaced.describe()[0]["state"] == "ready"
    assert replaced.describe()[1]["state"] == "disabled (unauthorized)"


@pytest.mark.parametrize(
    "garbage", [None, 5, "x", {"cooldowns": "no", "strikes": [1], "disabled": 3, "day": 2}]
)
def test_account_state_ignores_garbage(garbage):
    state = AccountState.from_json(garbage, "label")
    assert (state.cooldowns, state.disabled, state.requests_today) == ({}, None, 0)


async def test_rate_headers():
    pool, _ = make_pool(rpm=40)
    assert pool.rate_headers() == {
        "X-RateLimit-Limit": "120",
        "X-RateLimit-Remaining": "120",
        "X-RateLimit-Reset": "0",
    }
    await take(pool)
    pool.clock.now -= 1  # type: ignore[attr-defined]
    headers = pool.rate_headers()
    assert headers["X-RateLimit-Remaining"] == "119" and headers["X-RateLimit-Reset"] == "60"
    pool.cool_down(pool.accounts[1], "*", 10)
    assert pool.rate_headers()["X-RateLimit-Remaining"] == "79"
    daily, _ = make_pool(rpd=100)
    assert daily.rate_headers()["X-RateLimit-Limit"] == "300"
    assert make_pool()[0].rate_headers() == {}


async def test_short_cooldown_is_waited_out_within_max_wait():
    pool, _ = make_pool(clock=time.time, keys=KEYS[:1], maxWait=2)
    pool.cool_down(pool.accounts[0], "*", 0.3)
    started = time.monotonic()
    pooled = await pool.acquire(None, "*", set())
    assert pooled.account.key == KEYS[0]
    assert 0.25 <= time.monotonic() - started < 1.5
