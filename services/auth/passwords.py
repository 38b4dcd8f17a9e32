"""Password hashing: bcrypt, cost 12, through passlib (libpass).

bcrypt reads only the first 72 bytes of a password, and bcrypt 5 refuses longer input outright.
We pre-hash instead of rejecting: passlib's ``bcrypt_sha256`` feeds bcrypt the base64 of an
HMAC-SHA256 of the whole password (keyed by the salt, so hashes cannot be "shucked" against leaked
unsalted SHA-256 lists). Every byte of a long passphrase counts, no user sees a surprising limit,
and the stored hash still says it is bcrypt with cost 12 (``$bcrypt-sha256$v=2,t=2b,r=12$``).
Input is capped at ``MAX_PASSWORD_CHARS`` (422 above it) so nobody can make us hash megabytes.
"""

from __future__ import annotations

import asyncio
import secrets

from passlib.context import CryptContext

BCRYPT_COST = 12
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024


class PasswordHasher:
    def __init__(self) -> None:
        self._context = CryptContext(schemes=["bcrypt_sha256"], bcrypt_sha256__rounds=BCRYPT_COST)
        # Unknown users are checked against this, so a login costs one bcrypt either way and its
        # timing does not reveal whether the email is registered.
        self._dummy_hash = self._context.hash(secrets.token_urlsafe(32))

    def hash_sync(self, password: str) -> str:
        return self._context.hash(password)

    async def hash(self, password: str) -> str:
        # bcrypt takes a few hundred milliseconds: off the event loop, or every request waits.
        return await asyncio.to_thread(self._context.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> bool:
        """True when ``password`` matches; with no stored hash, burn the same time and say False."""
        target = stored_hash or self._dummy_hash
        matched = await asyncio.to_thread(self._context.verify, password, target)
        return matched and stored_hash is not None

    def cost_of(self, stored_hash: str) -> int:
        """The bcrypt cost a stored hash was made with."""
        return int(self._context.handler("bcrypt_sha256").from_string(stored_hash).rounds)
