"""Model resolution: a request's `model` -> its ordered targets (provider, model, variant)."""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from proxy.config import Config, ModelConfig, ProviderConfig


@dataclass(frozen=True, slots=True)
class Target:
    """One provider model (with an optional variant) a request can be sent to."""

    provider: str
    model: str
    upstream_id: str
    provider_config: ProviderConfig
    model_config: ModelConfig | None = None
    variant: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        base = f"{self.provider}/{self.model}"
        return f"{base}:{self.variant}" if self.variant else base

    @property
    def streaming(self) -> bool:
        if self.model_config is not None and self.model_config.supports is not None:
            return self.model_config.supports.streaming
        return self.provider_config.supports.streaming


class UnknownModel(Exception):
    """The requested model resolves to nothing; carries close names for the error message."""

    def __init__(self, requested: str, message: str, suggestions: list[str]) -> None:
        super().__init__(message)
        self.requested = requested
        self.message = message
        self.suggestions = suggestions


class Router:
    """Resolves model names per DESIGN section 4, from tables built once per config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._targets: dict[str, Target] = {}
        self._listed: list[Target] = []
        self._ambiguous: dict[str, list[str]] = {}
        self._build_targets()
        self._aliases: dict[str, tuple[Target, ...]] = {}
        for alias, entry in config.aliases.items():
            names = [entry.model, *entry.fallbacks]
            targets = [self._targets.get(n) for n in names]
            self._aliases[alias] = tuple(t for t in targets if t is not None)

    def _build_targets(self) -> None:
        by_key: dict[str, list[Target]] = defaultdict(list)
        upstream_forms: list[tuple[str, Target]] = []
        for pname, provider in self.config.providers.items():
            for key, model in provider.models.items():
                upstream_id = model.id or key
                plain = Target(pname, key, upstream_id, provider, model)
                forms = [plain] + [
                    Target(pname, key, upstream_id, provider, model, vname, dict(settings))
                    for vname, settings in model.variants.items()
                ]
                for target in forms:
                    self._targets[target.name] = target
                    self._listed.append(target)
                    suffix = f":{target.variant}" if target.variant else ""
                    by_key[key + suffix].append(target)
                    upstream_forms.append((f"{pname}/{upstream_id}{suffix}", target))
        for name, target in upstream_forms:
            self._targets.setdefault(name, target)
        for bare, targets in by_key.items():
            if bare in self._targets:
                continue
            if len(targets) == 1:
                self._targets[bare] = targets[0]
            else:
                self._ambiguous[bare] = [t.name for t in targets]

    def resolve(self, requested: str) -> tuple[Target, ...]:
        """An alias yields its model then its fallbacks; any other name yields one target."""
        alias = self._aliases.get(requested)
        if alias is not None:
            return alias
        return (self.resolve_target(requested),)

    def resolve_target(self, requested: str) -> Target:
        target = self._targets.get(requested)
        if target is not None:
            return target
        provider_name, slash, rest = requested.partition("/")
        provider = self.config.providers.get(provider_name) if slash else None
        if provider is not None and not provider.models and rest:
            return Target(provider_name, rest, rest, provider)
        if requested in self._ambiguous:
            choices = self._ambiguous[requested]
            raise UnknownModel(
                requested,
                f"model {requested!r} is offered by several providers; name one of: "
                + ", ".join(choices),
                choices,
            )
        suggestions = difflib.get_close_matches(requested, self.names(), n=5, cutoff=0.5)
        message = f"model {requested!r} not found"
        if suggestions:
            message += "; did you mean " + ", ".join(suggestions) + "?"
        else:
            message += "; GET /v1/models lists the available names"
        raise UnknownModel(requested, message, suggestions)

    def names(self) -> list[str]:
        """Every name /v1/models lists: aliases, then provider/model[:variant]."""
        return list(self.config.aliases) + [t.name for t in self._listed]

    def listing(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(name, owner, extra fields) for each listed model, for /v1/models."""
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for alias, entry in self.config.aliases.items():
            first = self._aliases[alias][0] if self._aliases[alias] else None
            extra: dict[str, Any] = {"model": entry.model, "fallbacks": list(entry.fallbacks)}
            if first is not None:
                extra["limit"] = _limit(first)
            rows.append((alias, "switchyard", extra))
        for target in self._listed:
            extra = {"upstream_id": target.upstream_id, "limit": _limit(target)}
            if target.variant:
                extra["variant"] = target.variant
            elif target.model_config and target.model_config.variants:
                extra["variants"] = list(target.model_config.variants)
            if target.model_config and target.model_config.name:
                extra["display_name"] = target.model_config.name
            rows.append((target.name, target.provider, extra))
        return rows


def _limit(target: Target) -> dict[str, int]:
    limit = target.model_config.limit if target.model_config else None
    if limit is None:
        return {}
    return limit.model_dump(exclude_none=True)
