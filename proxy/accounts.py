"""Accounts per provider: each API key in turn, the next one after a 429 (the simple form)."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.config import Config
from proxy.masking import mask


@dataclass(frozen=True, slots=True)
class Account:
    """One credential of a provider; `key` is None for upstreams that need no auth."""

    provider: str
    key: str | None
    label: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", mask(self.key) if self.key else "(no key)")


class KeyRing:
    """A provider's accounts, handed out round-robin so load spreads across keys."""

    def __init__(self, provider: str, keys: list[str] | None) -> None:
        if keys is None:
            self.accounts = [Account(provider, None)]
        else:
            self.accounts = [Account(provider, key) for key in keys]
        self._next = 0

    def order(self) -> list[Account]:
        """All accounts, starting with the next one in turn."""
        count = len(self.accounts)
        if count <= 1:
            return self.accounts
        start = self._next
        self._next = (start + 1) % count
        return self.accounts[start:] + self.accounts[:start]

    def counts(self) -> dict[str, int]:
        total = len(self.accounts)
        return {"accounts": total, "usable": total, "cooling": 0, "disabled": 0}


def build_pools(config: Config) -> dict[str, KeyRing]:
    return {name: KeyRing(name, p.apiKeys) for name, p in config.providers.items()}


def all_secrets(config: Config) -> list[str]:
    """Every configured secret, so logs and errors can scrub them."""
    secrets = list(config.server.apiKeys)
    for provider in config.providers.values():
        secrets.extend(provider.apiKeys or [])
    return secrets
