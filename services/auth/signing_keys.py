"""The RS256 key pair that signs tokens, and the public keys that verify them, by ``kid``.

``kid`` is the RFC 7638 JWK thumbprint of the public key, so it is derived, never configured, and a
rotated key (old private key's public half in ``DURABOT_JWT_RETIRED_PUBLIC_KEYS``) keeps verifying
the tokens it signed until they expire while new tokens carry the new ``kid``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from activities.binance.key_vault import read_or_create_secret_file
from core.settings import Settings

PRIVATE_KEY_FILE = "jwt-private.pem"
RSA_BITS = 3072
MIN_RSA_BITS = 2048
_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwk_thumbprint(public_key: rsa.RSAPublicKey) -> str:
    numbers = public_key.public_numbers()
    canonical = json.dumps({"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
                           separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")


def _new_private_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True, repr=False)
class SigningKeys:
    private_key: rsa.RSAPrivateKey
    kid: str
    verifying: dict[str, rsa.RSAPublicKey]

    def __repr__(self) -> str:
        return f"SigningKeys(kid={self.kid!r}, verifying={sorted(self.verifying)})"

    @classmethod
    def from_pem(cls, private_pem: bytes, retired_public_pems: str | None = None) -> SigningKeys:
        private_key = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey) or private_key.key_size < MIN_RSA_BITS:
            raise ValueError(f"the JWT signing key must be an RSA private key of at least {MIN_RSA_BITS} bits")
        verifying: dict[str, rsa.RSAPublicKey] = {}
        for block in _PEM_BLOCK.findall(retired_public_pems or ""):
            public = serialization.load_pem_public_key(block.encode())
            if not isinstance(public, rsa.RSAPublicKey):
                raise ValueError("retired JWT public keys must be RSA public keys")
            verifying[jwk_thumbprint(public)] = public
        kid = jwk_thumbprint(private_key.public_key())
        verifying[kid] = private_key.public_key()
        return cls(private_key=private_key, kid=kid, verifying=verifying)

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKeys:
        """The configured PEM, or the key pair generated once into ``var_dir/jwt-private.pem``."""
        if settings.jwt_private_key is not None:
            pem = settings.jwt_private_key.get_secret_value().encode()
        else:
            pem = read_or_create_secret_file(settings.var_dir / PRIVATE_KEY_FILE, _new_private_pem)
        return cls.from_pem(pem, settings.jwt_retired_public_keys)

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
