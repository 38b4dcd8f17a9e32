"""RS256 access and refresh tokens (RFC 8725 rules).

Only RS256 verifies: the algorithm list is pinned, so ``alg=none`` and HS256 signed with our
public key are refused. The ``kid`` header must name a key we hold; ``jku``/``jwk``/``x5u``/``x5c``
headers are refused rather than followed. ``typ`` tells the two kinds apart (``at+jwt`` for access,
RFC 9068; ``rt+jwt`` for refresh) and so do their audiences, so neither can stand in for the other.
``iss``, ``aud``, ``exp``, ``iat``, ``sub``, ``sid`` and ``jti`` are required.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import jwt

from core.settings import Settings
from services.auth.signing_keys import SigningKeys

ALGORITHM = "RS256"
TokenKind = Literal["access", "refresh"]
TOKEN_TYPES: dict[TokenKind, str] = {"access": "at+jwt", "refresh": "rt+jwt"}
_FORBIDDEN_HEADERS = ("jku", "jwk", "x5u", "x5c")
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "sid", "jti"]
LEEWAY_S = 5


class InvalidTokenError(Exception):
    """The token must not be honoured; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    session_id: str
    token_id: str
    expires_at: int


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int

    @property
    def digest(self) -> str:
        return token_digest(self.token)


def token_digest(token: str) -> str:
    """How a refresh token is stored: it carries 256 bits of entropy, so a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenService:
    def __init__(self, keys: SigningKeys, *, issuer: str, audience: str, access_ttl_s: int, refresh_ttl_s: int):
        self.keys = keys
        self.issuer = issuer
        self.audiences: dict[TokenKind, str] = {"access": audience, "refresh": f"{audience}:refresh"}
        self.ttl_s: dict[TokenKind, int] = {"access": access_ttl_s, "refresh": refresh_ttl_s}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        return cls(SigningKeys.from_settings(settings), issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                   access_ttl_s=settings.access_token_ttl_s, refresh_ttl_s=settings.refresh_token_ttl_s)

    def issue(self, kind: TokenKind, user_id: str, session_id: str) -> IssuedToken:
        now = int(time.time())
        expires_at = now + self.ttl_s[kind]
        claims = {"iss": self.issuer, "aud": self.audiences[kind], "sub": user_id, "sid": session_id,
                  "iat": now, "nbf": now, "exp": expires_at, "jti": secrets.token_urlsafe(32)}
        token = jwt.encode(claims, self.keys.private_key, algorithm=ALGORITHM,
                           headers={"kid": self.keys.kid, "typ": TOKEN_TYPES[kind]})
        return IssuedToken(token, expires_at)

    def verify(self, token: str, kind: TokenKind) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None
        if any(name in header for name in _FORBIDDEN_HEADERS):
            raise InvalidTokenError("token headers jku/jwk/x5u/x5c are not accepted")
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError(f"only {ALGORITHM} tokens are accepted")
        if header.get("typ") != TOKEN_TYPES[kind]:
            raise InvalidTokenError(f"not an {kind} token")
        key = self.keys.verifying.get(str(header.get("kid", "")))
        if key is None:
            raise InvalidTokenError("unknown signing key (kid)")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self.audiences[kind],
                                issuer=self.issuer, leeway=LEEWAY_S,
                                options={"require": _REQUIRED_CLAIMS, "verify_signature": True})
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("token expired", expired=True) from None
        except jwt.InvalidAudienceError:
            raise InvalidTokenError(f"not an {kind} token for this service (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("token from another issuer (iss)") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("invalid token") from None
        fields = (claims.get("sub"), claims.get("sid"), claims.get("jti"))
        if not all(isinstance(value, str) and value for value in fields):
            raise InvalidTokenError("invalid token claims")
        return TokenClaims(user_id=claims["sub"], session_id=claims["sid"], token_id=claims["jti"],
                           expires_at=int(claims["exp"]))
