"""Prometheus metrics (names after the seed's), one registry per running server."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 90, 120, 180, 300)


class Metrics:
    """Counters and histograms for requests, upstream outcomes, tokens and latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route and status",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.model_requests = Counter(
            "model_requests_total",
            "Requests per upstream model, by outcome (ok, error, upstream failure reasons)",
            ["provider", "model", "outcome"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "model_tokens_used_total",
            "Tokens reported by upstreams, by type (prompt, completion)",
            ["provider", "model", "type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "model_latency_seconds",
            "Time from request to the end of the answer",
            ["provider", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_token = Histogram(
            "model_time_to_first_token_seconds",
            "Time from request to the first byte of the answer sent to the client",
            ["provider", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.cache_requests = Counter(
            "cache_requests_total",
            "Cache lookups by tier (exact, semantic) and result (hit, miss)",
            ["tier", "result"],
            registry=self.registry,
        )
        self._children: dict[tuple[object, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: the lookup is the costly part of an update."""
        key = (metric, *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def cache_lookup(self, plan: Any, hit: Any) -> None:
        """One count per tier looked at: a hit for the tier that served, misses before it."""
        if plan.lookup_exact:
            exact = "hit" if hit is not None and hit.tier == "hit" else "miss"
            self.child(self.cache_requests, "exact", exact).inc()
            if exact == "hit":
                return
        if plan.lookup_semantic:
            semantic = "hit" if hit is not None else "miss"
            self.child(self.cache_requests, "semantic", semantic).inc()

    def request(self, method: str, endpoint: str, status: int) -> None:
        self.child(self.http_requests, method, endpoint, str(status)).inc()

    def upstream_failure(self, provider: str, model: str, reason: str) -> None:
        self.child(self.model_requests, provider, model, reason).inc()

    def answered(
        self,
        provider: str,
        model: str,
        outcome: str,
        latency: float,
        first_token: float | None,
        tokens: tuple[int | None, int | None],
    ) -> None:
        child = self.child
        child(self.model_requests, provider, model, outcome).inc()
        child(self.latency, provider, model).observe(latency)
        if first_token is not None:
            child(self.first_token, provider, model).observe(first_token)
        prompt, completion = tokens
        if prompt:
            child(self.tokens, provider, model, "prompt").inc(prompt)
        if completion:
            child(self.tokens, provider, model, "completion").inc(completion)

    def render(self) -> bytes:
        return generate_latest(self.registry)
