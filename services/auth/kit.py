"""What the auth layer builds once per gateway: hasher, token service, master keyring, login and
two-factor limits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from activities.binance.key_vault import MasterKeyring
from core.settings import Settings
from services.auth.passwords import PasswordHasher
from services.auth.rate_limit import SlidingWindowLimiter
from services.auth.tokens import TokenService


@dataclass(frozen=True)
class AuthServices:
    hasher: PasswordHasher
    tokens: TokenService
    keyring: MasterKeyring
    login_attempts_by_ip: SlidingWindowLimiter
    login_failures_by_email: SlidingWindowLimiter
    two_factor_failures_by_user: SlidingWindowLimiter
    two_factor_attempts_by_ip: SlidingWindowLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthServices:
        return cls(
            hasher=PasswordHasher(),
            tokens=TokenService.from_settings(settings),
            keyring=MasterKeyring.from_settings(settings),
            login_attempts_by_ip=SlidingWindowLimiter(settings.login_attempts_per_ip, settings.login_window_s),
            login_failures_by_email=SlidingWindowLimiter(settings.login_failures_per_email, settings.login_window_s),
            two_factor_failures_by_user=SlidingWindowLimiter(settings.two_factor_failures_per_user,
                                                             settings.two_factor_window_s),
            two_factor_attempts_by_ip=SlidingWindowLimiter(settings.two_factor_attempts_per_ip,
                                                           settings.two_factor_window_s),
        )

    @classmethod
    async def start(cls, settings: Settings) -> AuthServices:
        # Key generation and the dummy bcrypt hash take a moment: keep the loop free meanwhile.
        return await asyncio.to_thread(cls.from_settings, settings)
