"""What the auth layer builds once per gateway: hasher, token service, master keyring (the rate
limits live in MongoDB: ``services.auth.rate_limit``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from activities.binance.key_vault import MasterKeyring
from core.settings import Settings
from services.auth.passwords import PasswordHasher
from services.auth.tokens import TokenService


@dataclass(frozen=True)
class AuthServices:
    hasher: PasswordHasher
    tokens: TokenService
    keyring: MasterKeyring

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthServices:
        return cls(
            hasher=PasswordHasher(),
            tokens=TokenService.from_settings(settings),
            keyring=MasterKeyring.from_settings(settings),
        )

    @classmethod
    async def start(cls, settings: Settings) -> AuthServices:
        # Key generation and the dummy bcrypt hash take a moment: keep the loop free meanwhile.
        return await asyncio.to_thread(cls.from_settings, settings)
