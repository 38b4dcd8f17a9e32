"""Exchange API keys at rest: AES-256-GCM under a master key, each ciphertext bound to its owner.

The associated data names the user and the key ID, so a ciphertext copied into another user's
document (or under another key ID) fails to decrypt instead of handing that user the key. Every
sealed key records which master key sealed it (``master_key_id``): the current key encrypts, the
retired ones (``DURABOT_RETIRED_MASTER_KEYS``) still decrypt what was sealed before a rotation.

Only the gateway (to save and test a key) and activities (to trade with it) decrypt; workflows
pass the key ID, never the key, so no key reaches a Temporal history.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo.asynchronous.database import AsyncDatabase

from core.settings import Settings

MASTER_KEY_BYTES = 32
NONCE_BYTES = 12
MASTER_KEY_FILE = "master.key"


class SecretFileError(RuntimeError):
    """A key file exists but is unsafe (readable by others) or malformed."""


class KeyVaultError(RuntimeError):
    """A sealed key cannot be opened: unknown master key, or a ciphertext that is not this user's."""


class ApiKeyNotFoundError(LookupError):
    """No API key with that ID belongs to that user."""


def read_or_create_secret_file(path: Path, generate: Callable[[], bytes]) -> bytes:
    """The file's bytes, created first (mode 0600) when missing.

    Processes starting together agree on one value: the file appears atomically as a hard link to a
    finished temporary file, and a process that loses the race reads the winner's file. An existing
    file that group or others may read is refused rather than trusted."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(generate())
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretFileError(f"{path} is readable by group or others (mode {mode:o}); chmod 600 it")
    return path.read_bytes()


def parse_master_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("a master key must be base64url text") from None
    if len(key) != MASTER_KEY_BYTES:
        raise ValueError(f"a master key must decode to {MASTER_KEY_BYTES} bytes, not {len(key)}")
    return key


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode().rstrip("=")


def master_key_id(key: bytes) -> str:
    # A short fingerprint names the key in each record; it reveals nothing usable about the key.
    return hashlib.sha256(b"durabot-master-key-id:" + key).hexdigest()[:12]


@dataclass(frozen=True)
class SealedSecret:
    master_key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, repr=False)
class MasterKeyring:
    current_id: str
    keys: Mapping[str, bytes]

    def __repr__(self) -> str:
        return f"MasterKeyring(current_id={self.current_id!r}, keys={len(self.keys)})"

    @classmethod
    def from_keys(cls, current: bytes, retired: tuple[bytes, ...] = ()) -> MasterKeyring:
        keys = {master_key_id(k): k for k in retired}
        keys[master_key_id(current)] = current
        return cls(current_id=master_key_id(current), keys=keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> MasterKeyring:
        """The configured master key, or the one generated once into ``var_dir/master.key``."""
        if settings.master_key is not None:
            current = parse_master_key(settings.master_key.get_secret_value())
        else:
            text = read_or_create_secret_file(
                settings.var_dir / MASTER_KEY_FILE, lambda: new_master_key_text().encode()
            ).decode()
            try:
                current = parse_master_key(text)
            except ValueError as exc:
                raise SecretFileError(f"{settings.var_dir / MASTER_KEY_FILE}: {exc}") from None
        retired_text = settings.retired_master_keys.get_secret_value() if settings.retired_master_keys else ""
        retired = tuple(parse_master_key(part) for part in retired_text.split(",") if part.strip())
        return cls.from_keys(current, retired)

    def seal(self, plaintext: bytes, context: bytes) -> SealedSecret:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self.keys[self.current_id]).encrypt(nonce, plaintext, context)
        return SealedSecret(self.current_id, nonce, ciphertext)

    def open(self, sealed: SealedSecret, context: bytes) -> bytes:
        key = self.keys.get(sealed.master_key_id)
        if key is None:
            raise KeyVaultError(f"sealed under master key {sealed.master_key_id}, which is not configured")
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, context)
        except InvalidTag:
            raise KeyVaultError("the sealed key does not belong to this user and key ID, or was altered") from None


@dataclass(frozen=True)
class ApiCredentials:
    """An exchange key pair in memory. Neither half ever appears in its repr."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)

    @property
    def masked_key(self) -> str:
        return mask(self.api_key)


def mask(api_key: str) -> str:
    return "****" + api_key[-4:]


def _context(user_id: str, key_id: str) -> bytes:
    return f"durabot:api_key:v1:{user_id}:{key_id}".encode()


def seal_credentials(keyring: MasterKeyring, user_id: str, key_id: str, credentials: ApiCredentials) -> dict[str, Any]:
    """The encrypted fields of an ``api_keys`` document."""
    plaintext = f"{credentials.api_key}\n{credentials.api_secret}".encode()
    sealed = keyring.seal(plaintext, _context(user_id, key_id))
    return {"master_key_id": sealed.master_key_id, "nonce": sealed.nonce, "ciphertext": sealed.ciphertext}


def open_credentials(keyring: MasterKeyring, doc: Mapping[str, Any]) -> ApiCredentials:
    sealed = SealedSecret(doc["master_key_id"], bytes(doc["nonce"]), bytes(doc["ciphertext"]))
    api_key, _, api_secret = keyring.open(sealed, _context(doc["user_id"], doc["key_id"])).decode().partition("\n")
    return ApiCredentials(api_key, api_secret)


async def load_credentials(db: AsyncDatabase, keyring: MasterKeyring, user_id: str, key_id: str) -> ApiCredentials:
    """What an activity calls with the key ID a workflow passed it: the user's decrypted key pair."""
    doc = await db.api_keys.find_one({"user_id": user_id, "key_id": key_id})
    if doc is None:
        raise ApiKeyNotFoundError(f"no API key {key_id!r} for user {user_id!r}")
    return open_credentials(keyring, doc)
