"""Walking a request's targets and each target's accounts until one answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from proxy.accounts import Account
from proxy.errors import ProxyError
from proxy.routing import Target
from proxy.state import Switchyard
from proxy.upstream import Answer, Failure, UpstreamFailed

Call = Callable[[Target, Account], Awaitable[Answer]]


class FallbackChain:
    """Tries each target in order, each of its accounts in turn; remembers every failure."""

    def __init__(self, app: Switchyard, targets: tuple[Target, ...]) -> None:
        self.app = app
        self.targets = targets
        self.failures: list[Failure] = []
        self.attempts = 0
        self.fallback = 0
        self.answer: Answer | None = None

    async def run(self, call: Call) -> Answer:
        """The first answer; a ProxyError when an upstream rejects the request itself or
        when every target failed."""
        for index, target in enumerate(self.targets):
            accounts = self.app.pools[target.provider].order()
            if not accounts:
                self.failures.append(
                    Failure(target.name, "-", 503, "no_account", "provider has no API key set")
                )
                continue
            for account in accounts:
                self.attempts += 1
                try:
                    answer = await call(target, account)
                except UpstreamFailed as exc:
                    failure = exc.failure
                    self.failures.append(failure)
                    self.app.metrics.upstream_failure(target.provider, target.name, failure.reason)
                    self.app.log.info("upstream_failed", **failure.detail())
                    if not failure.fall_over:
                        raise self.relayed(failure) from None
                    if not failure.next_account:
                        break
                    continue
                self.fallback = index
                self.answer = answer
                return answer
        raise self.exhausted()

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
            code = "no_account" if last.reason == "no_account" else "upstream_failed"
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
