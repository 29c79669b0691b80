"""Accounts: one credential of a provider, known everywhere by a masked label and a stable id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from proxy.config import Config
from proxy.masking import mask


@dataclass(frozen=True, slots=True)
class Account:
    """An API key of a provider; `key` is None for upstreams that need no auth.

    `id` is derived from the credential, so a changed key is a new account with a clean
    record (a disabled key stays disabled until it is replaced)."""

    provider: str
    key: str | None
    label: str = field(init=False, compare=False)
    id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", mask(self.key) if self.key else "(no key)")
        digest = hashlib.sha256(f"{self.provider}\0{self.key or ''}".encode()).hexdigest()
        object.__setattr__(self, "id", "key-" + digest[:16])

    async def refresh(self) -> bool:
        """Renew the credential after a 401; True when it changed. API keys cannot."""
        return False


def provider_accounts(name: str, keys: list[str] | None) -> list[Account]:
    """A provider's accounts: one per API key, or one without a key when none is configured."""
    if keys is None:
        return [Account(name, None)]
    return [Account(name, key) for key in dict.fromkeys(keys)]


def all_secrets(config: Config) -> list[str]:
    """Every configured secret, so logs and errors can scrub them."""
    secrets = list(config.server.apiKeys)
    for provider in config.providers.values():
        secrets.extend(provider.apiKeys or [])
    return secrets
