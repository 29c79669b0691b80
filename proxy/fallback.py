"""Walking a request's targets, and each target's account pool, until one answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from adapters.errors import disabled_reason
from proxy.accounts import Account
from proxy.errors import ProxyError
from proxy.pool import Pool, PooledAccount, PoolExhausted
from proxy.routing import Target
from proxy.state import Switchyard
from proxy.upstream import ADAPTERS, Answer, Failure, UpstreamFailed

Call = Callable[[Target, Account], Awaitable[Answer]]


def family_of(target: Target) -> str:
    """The quota family a 429 cools: the model's `family`, else the adapter's default (every
    model of an OpenAI-compatible key; the one model for Gemini)."""
    config = target.model_config
    if config is not None and config.family:
        return config.family
    return ADAPTERS[target.provider_config.type].quota_family(target.upstream_id)


class FallbackChain:
    """Tries each target in order; within a target, accounts from its pool: the next account
    after a 429 or a refused credential, the same target again (with backoff) after a 5xx,
    timeout or connection failure, the next target when the pool or the retries run out."""

    def __init__(
        self, app: Switchyard, targets: tuple[Target, ...], session: str | None = None
    ) -> None:
        self.app = app
        self.targets = targets
        self.session = session
        self.failures: list[Failure] = []
        self.attempts = 0
        self.fallback = 0
        self.answer: Answer | None = None

    async def run(self, call: Call) -> Answer:
        """The first answer; a ProxyError when an upstream rejects the request itself or
        when every target failed."""
        for index, target in enumerate(self.targets):
            answer = await self._try_target(target, self.app.pools[target.provider], call)
            if answer is not None:
                self.fallback = index
                self.answer = answer
                return answer
        raise self.exhausted()

    async def _try_target(self, target: Target, pool: Pool, call: Call) -> Answer | None:
        family = family_of(target)
        excluded: set[str] = set()
        refreshed: set[str] = set()
        retries = 0
        retry_now: PooledAccount | None = None
        while True:
            if retry_now is not None:  # the same account straight after a credential refresh
                pooled, retry_now = retry_now, None
            else:
                try:
                    pooled = await pool.acquire(self.session, family, excluded)
                except PoolExhausted as exc:
                    status = 429 if exc.reason in ("cooling", "paced") else 503
                    failure = Failure(
                        target.name, "-", status, exc.reason, exc.message, exc.retry_after
                    )
                    self._failed(target, failure)
                    return None
            self.attempts += 1
            try:
                answer = await call(target, pooled.account)
            except UpstreamFailed as exc:
                failure = exc.failure
                self._failed(target, failure)
                if failure.status == 429:
                    pool.cool_down(pooled, family, failure.retry_after)
                    excluded.add(pooled.id)
                elif failure.status == 401:
                    if pooled.id not in refreshed:  # one refresh and one retry, then disable
                        refreshed.add(pooled.id)
                        await pooled.account.refresh()
                        retry_now = pooled
                        continue
                    pool.disable(pooled, "unauthorized")
                    excluded.add(pooled.id)
                elif failure.status == 403:
                    reason = disabled_reason(403, failure.message)
                    if reason:
                        pool.disable(pooled, reason)
                    excluded.add(pooled.id)
                elif failure.status >= 500:
                    if retries >= self.app.config.retry.maxRetries:
                        return None
                    await asyncio.sleep(self._backoff(retries, failure.retry_after))
                    retries += 1
                elif failure.fall_over:
                    return None
                else:
                    raise self.relayed(failure) from None
                continue
            pool.succeeded(pooled, family)
            return answer

    def _backoff(self, retries: int, hint: float | None) -> float:
        retry = self.app.config.retry
        delay = min(retry.baseDelay * retry.backoffMultiplier**retries, retry.maxDelay)
        if hint is not None:
            delay = min(max(delay, hint * 1000), retry.maxDelay)
        return delay / 1000

    def _failed(self, target: Target, failure: Failure) -> None:
        self.failures.append(failure)
        self.app.metrics.upstream_failure(target.provider, target.name, failure.reason)
        self.app.log.info("upstream_failed", **failure.detail())

    def relayed(self, failure: Failure) -> ProxyError:
        """An upstream's own client error (a bad request), passed on as the client's error."""
        error = failure.error or {}
        return ProxyError(
            failure.status,
            failure.message,
            code=error.get("code"),
            param=error.get("param"),
            provider=failure.target.partition("/")[0],
            error_type=error.get("type"),
        )

    def exhausted(self) -> ProxyError:
        """No target answered: 429 with the earliest reset if any was rate limited, else the
        last failure's status; every attempt listed in `details`."""
        failures = self.failures
        details = [f.detail() for f in failures]
        limited = [f for f in failures if f.status == 429]
        last = failures[-1]
        if limited:
            hints = [f.retry_after for f in limited if f.retry_after is not None]
            status, code = 429, "rate_limited"
            retry_after = min(hints) if hints else None
        else:
            status = last.status if last.status >= 500 else 502
            code = last.reason if last.reason in ("no_account", "disabled") else "upstream_failed"
            retry_after = last.retry_after
        summary = "; ".join(f"{f.target}: {f.status} {f.message}" for f in failures[-3:])
        return ProxyError(
            status,
            f"no upstream could answer ({len(failures)} attempts): {summary}",
            code=code,
            provider=last.target.partition("/")[0],
            retry_after=retry_after,
            details=details,
        )
