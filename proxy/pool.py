"""Account pools: choose an account (sticky per session, else least recently used), pace it,
cool it down after a 429, disable it when its credential is refused, count its day."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from aiolimiter import AsyncLimiter
from cachetools import LRUCache

from proxy.accounts import Account, provider_accounts
from proxy.config import Config, ProviderConfig

ALL_MODELS = "*"  # the cooldown family that covers every model of an account
DEFAULT_COOLDOWN = 60.0
MAX_DEFAULT_COOLDOWN = 30 * 60.0
WINDOW = 60.0  # seconds counted for X-RateLimit-Remaining
SESSIONS_REMEMBERED = 10_000


@dataclass
class AccountState:
    """What is remembered about an account across requests and restarts."""

    label: str
    cooldowns: dict[str, float] = field(default_factory=dict)  # family -> epoch seconds
    strikes: dict[str, int] = field(default_factory=dict)  # family -> 429s in a row
    disabled: str | None = None
    disabled_at: float | None = None
    day: str = ""
    requests_today: int = 0
    last_used: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, label: str) -> AccountState:
        state = cls(label)
        if not isinstance(data, dict):
            return state
        for name in ("cooldowns", "strikes"):
            value = data.get(name)
            if isinstance(value, dict):
                setattr(state, name, {str(k): v for k, v in value.items() if _number(v)})
        if isinstance(data.get("disabled"), str):
            state.disabled = data["disabled"]
            state.disabled_at = (
                data.get("disabled_at") if _number(data.get("disabled_at")) else None
            )
        if isinstance(data.get("day"), str) and _number(data.get("requests_today")):
            state.day, state.requests_today = data["day"], int(data["requests_today"])
        if _number(data.get("last_used")):
            state.last_used = float(data["last_used"])
        return state


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class PoolExhausted(Exception):
    """No account of the pool can take the request now."""

    def __init__(self, reason: str, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class PooledAccount:
    """An account with its pacing limiter and remembered state."""

    __slots__ = ("account", "limiter", "period", "recent", "state", "waiting")

    def __init__(self, account: Account, rpm: int | None, state: AccountState) -> None:
        self.account = account
        self.state = state
        self.period = WINDOW / rpm if rpm else 0.0
        # One request per period, no bursts, so a fixed per-minute window upstream never sees
        # more than rpm requests from one account. Past 30k rpm, a burst covering 2 ms: the
        # event loop's clock moves in milliseconds, so finer spacing would only mean waits.
        burst = max(1, math.ceil(rpm / 30_000)) if rpm else 1
        self.limiter = AsyncLimiter(burst, burst * self.period) if rpm else None
        self.waiting = 0
        self.recent: deque[float] = deque(maxlen=min(rpm or 1, 10_000))

    @property
    def id(self) -> str:
        return self.account.id

    def expected_wait(self) -> float:
        if self.limiter is None or self.limiter.has_capacity():
            return 0.0
        return (self.waiting + 1) * self.period


class Pool:
    """One provider's accounts."""

    def __init__(
        self,
        name: str,
        provider: ProviderConfig,
        accounts: Iterable[Account],
        saved: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] = lambda: None,
        on_event: Callable[..., None] = lambda event, **fields: None,
    ) -> None:
        self.name = name
        self.rpm = provider.rateLimit.rpm
        self.rpd = provider.rateLimit.rpd
        self.max_wait = provider.rateLimit.maxWait
        zone = provider.rateLimit.timezone
        self.zone: tzinfo = UTC if zone == "UTC" else ZoneInfo(zone)
        self.clock = clock
        self.on_change = on_change
        self.on_event = on_event
        saved = saved or {}
        self.accounts = [
            PooledAccount(a, self.rpm, AccountState.from_json(saved.get(a.id), a.label))
            for a in accounts
        ]
        self._by_id = {a.id: a for a in self.accounts}
        self.sessions: LRUCache[str, str] = LRUCache(SESSIONS_REMEMBERED)
        self._day: tuple[float, float, str] = (0.0, 0.0, "")

    # -- state of one account -------------------------------------------------------------

    def _today(self, now: float) -> str:
        """The provider's calendar day at `now`, recomputed only when a day boundary passed."""
        start, end, day = self._day
        if start <= now < end:
            return day
        day = datetime.fromtimestamp(now, self.zone).date().isoformat()
        self._day = (now, self.next_day_start(now), day)  # valid from now to the next midnight
        return day

    def next_day_start(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self.zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
        return midnight.replace(tzinfo=self.zone).timestamp()

    def requests_today(self, pooled: PooledAccount, now: float) -> int:
        state = pooled.state
        return state.requests_today if state.day == self._today(now) else 0

    def blocked_until(self, pooled: PooledAccount, family: str, now: float) -> float | None:
        """When the account can serve `family` again; None when it can now. Disabled: inf."""
        state = pooled.state
        if state.disabled:
            return math.inf
        cooldowns = state.cooldowns
        if cooldowns:
            until = max(cooldowns.get(family, 0.0), cooldowns.get(ALL_MODELS, 0.0))
            if until > now:
                return until
            if family in cooldowns and cooldowns[family] <= now:
                del cooldowns[family]  # expired: keep the common case an empty dict
        if self.rpd and self.requests_today(pooled, now) >= self.rpd:
            return self.next_day_start(now)
        return None

    # -- choosing and pacing ----------------------------------------------------------------

    async def acquire(self, session: str | None, family: str, exclude: set[str]) -> PooledAccount:
        """An account that may send a request now (its pacing budget taken), waiting up to
        rateLimit.maxWait for pacing budget or for a cooldown to end; else PoolExhausted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while True:
            now = self.clock()
            usable, earliest = self._usable(family, now, exclude)
            if not usable:
                if earliest is not None and earliest - now <= deadline - loop.time():
                    await asyncio.sleep(earliest - now)  # a cooldown ends within maxWait
                    continue
                raise self._exhausted(earliest, now)
            ordered = self._order(usable, session)
            chosen = None
            for candidate in ordered:
                limiter = candidate.limiter
                if limiter is None or limiter.has_capacity():
                    chosen = candidate
                    break
            if chosen is None:
                sticky = (
                    ordered[0] if session and self.sessions.get(session) == ordered[0].id else None
                )
                budget = deadline - loop.time()
                if sticky is not None and sticky.expected_wait() <= budget:
                    chosen = sticky
                else:
                    chosen = min(ordered, key=lambda a: (a.waiting, a.state.last_used))
                if not await self._wait(chosen, budget):
                    waits = [a.expected_wait() for a in ordered]
                    raise PoolExhausted(
                        "paced",
                        f"no account of {self.name} has rate-limit budget within "
                        f"{self.max_wait:g}s (rateLimit.rpm={self.rpm})",
                        min(waits) if waits else None,
                    )
                if self.blocked_until(chosen, family, self.clock()) is not None:
                    continue  # cooled or disabled while waiting: choose again
            elif chosen.limiter is not None:
                await chosen.limiter.acquire()
            self._mark_used(chosen, session)
            return chosen

    def _usable(
        self, family: str, now: float, exclude: set[str]
    ) -> tuple[list[PooledAccount], float | None]:
        usable = []
        earliest: float | None = None
        for pooled in self.accounts:
            if pooled.id in exclude:
                continue
            until = self.blocked_until(pooled, family, now)
            if until is None:
                usable.append(pooled)
            elif until != math.inf and (earliest is None or until < earliest):
                earliest = until
        return usable, earliest

    def _order(self, usable: list[PooledAccount], session: str | None) -> list[PooledAccount]:
        if len(usable) == 1:
            return usable
        ordered = sorted(usable, key=_last_used)
        if session:
            sticky_id = self.sessions.get(session)
            for index, pooled in enumerate(ordered):
                if pooled.id == sticky_id:
                    ordered.insert(0, ordered.pop(index))
                    break
        return ordered

    async def _wait(self, pooled: PooledAccount, budget: float) -> bool:
        assert pooled.limiter is not None
        if budget <= 0:
            return False
        pooled.waiting += 1
        try:
            await asyncio.wait_for(pooled.limiter.acquire(), budget)
        except TimeoutError:
            return False
        finally:
            pooled.waiting -= 1
        return True

    def _exhausted(self, earliest: float | None, now: float) -> PoolExhausted:
        disabled = [a for a in self.accounts if a.state.disabled]
        if not self.accounts:
            return PoolExhausted("no_account", f"{self.name} has no account (API key) set", None)
        if earliest is None and len(disabled) == len(self.accounts):
            reasons = sorted({a.state.disabled or "" for a in disabled})
            return PoolExhausted(
                "disabled", f"every account of {self.name} is disabled: {', '.join(reasons)}", None
            )
        wait = None if earliest is None else max(0.0, earliest - now)
        text = f"every account of {self.name} is cooling down or out of daily budget"
        if wait is not None:
            text += f"; the first is usable again in {math.ceil(wait)}s"
        return PoolExhausted("cooling", text, wait)

    def _mark_used(self, pooled: PooledAccount, session: str | None) -> None:
        now = self.clock()
        state = pooled.state
        today = self._today(now)
        if state.day != today:
            state.day, state.requests_today = today, 0
        state.requests_today += 1
        state.last_used = now
        recent = pooled.recent
        recent.append(now)
        while recent and recent[0] <= now - WINDOW:
            recent.popleft()
        if session:
            self.sessions[session] = pooled.id
        self.on_change()

    # -- outcomes ---------------------------------------------------------------------------

    def succeeded(self, pooled: PooledAccount, family: str) -> None:
        if pooled.state.strikes.pop(family, None) is not None:
            self.on_change()

    def cool_down(self, pooled: PooledAccount, family: str, hint: float | None) -> float:
        """Cool the account for `family` until the hinted reset, else 60 s doubling on each
        429 in a row (30 min at most). Returns the seconds chosen."""
        state = pooled.state
        strikes = state.strikes.get(family, 0) + 1
        state.strikes[family] = strikes
        if hint is None:
            seconds = min(DEFAULT_COOLDOWN * 2 ** (strikes - 1), MAX_DEFAULT_COOLDOWN)
        else:
            seconds = max(hint, 0.0)
        now = self.clock()
        state.cooldowns[family] = now + seconds
        self.on_change()
        self.on_event(
            "account_cooldown",
            provider=self.name,
            account=pooled.account.label,
            family=family,
            seconds=round(seconds, 3),
            until=_iso(now + seconds),
            hinted=hint is not None,
        )
        return seconds

    def disable(self, pooled: PooledAccount, reason: str) -> None:
        state = pooled.state
        state.disabled = reason
        state.disabled_at = self.clock()
        self.on_change()
        self.on_event(
            "account_disabled", provider=self.name, account=pooled.account.label, reason=reason
        )

    # -- reporting --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        now = self.clock()
        usable = cooling = disabled = 0
        for pooled in self.accounts:
            if pooled.state.disabled:
                disabled += 1
            elif self.blocked_until(pooled, ALL_MODELS, now) is None and not any(
                until > now for until in pooled.state.cooldowns.values()
            ):
                usable += 1
            else:
                cooling += 1
        return {
            "accounts": len(self.accounts),
            "usable": usable,
            "cooling": cooling,
            "disabled": disabled,
        }

    def rate_headers(self) -> dict[str, str]:
        """X-RateLimit-Limit/Remaining/Reset for this pool: per minute when rpm is set, per day
        when only rpd is; none when the provider has no limits configured."""
        now = self.clock()
        live = [a for a in self.accounts if not a.state.disabled]
        if self.rpm:
            remaining = 0
            oldest: float | None = None
            for pooled in live:
                recent = pooled.recent
                while recent and recent[0] <= now - WINDOW:
                    recent.popleft()
                if self.blocked_until(pooled, ALL_MODELS, now) is None:
                    remaining += max(0, self.rpm - len(recent))
                if recent and (oldest is None or recent[0] < oldest):
                    oldest = recent[0]
            reset = 0 if oldest is None else math.ceil(oldest + WINDOW - now)
            limit = self.rpm * len(live)
        elif self.rpd:
            remaining = sum(max(0, self.rpd - self.requests_today(a, now)) for a in live)
            reset = math.ceil(self.next_day_start(now) - now)
            limit = self.rpd * len(live)
        else:
            return {}
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def describe(self) -> list[dict[str, Any]]:
        """One row per account for `switchyard accounts`."""
        now = self.clock()
        rows = []
        for pooled in self.accounts:
            state = pooled.state
            cooling = {f: u for f, u in state.cooldowns.items() if u > now}
            if state.disabled:
                status = f"disabled ({state.disabled})"
            elif self.rpd and self.requests_today(pooled, now) >= self.rpd:
                status = "out of daily budget"
            elif cooling:
                status = "cooling (" + ", ".join(sorted(cooling)) + ")"
            else:
                status = "ready"
            rows.append(
                {
                    "provider": self.name,
                    "account": pooled.account.label,
                    "state": status,
                    "cooldown_until": _iso(max(cooling.values())) if cooling else None,
                    "requests_today": self.requests_today(pooled, now),
                    "rpd": self.rpd,
                    "last_used": _iso(state.last_used) if state.last_used else None,
                }
            )
        return rows

    def snapshot(self) -> dict[str, Any]:
        return {pooled.id: pooled.state.to_json() for pooled in self.accounts}

    def find(self, account_id: str) -> PooledAccount | None:
        return self._by_id.get(account_id)


def _last_used(pooled: PooledAccount) -> float:
    return pooled.state.last_used


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_pools(
    config: Config,
    saved: dict[str, Any],
    on_change: Callable[[], None] = lambda: None,
    on_event: Callable[..., None] = lambda event, **fields: None,
) -> dict[str, Pool]:
    """A pool per provider, its accounts' state restored from `saved` (the state file)."""
    pools = {}
    for name, provider in config.providers.items():
        saved_accounts = saved.get(name)
        pools[name] = Pool(
            name,
            provider,
            provider_accounts(name, provider.apiKeys),
            saved_accounts if isinstance(saved_accounts, dict) else {},
            on_change=on_change,
            on_event=on_event,
        )
    return pools
