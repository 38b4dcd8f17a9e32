"""TOTP (RFC 6238) secrets, codes and recovery codes, and how they are kept at rest.

A secret is sealed like an exchange key (AES-GCM under the master key, bound to its user), so a
database dump alone cannot mint codes. Recovery codes are kept as HMACs under a key derived from
the master key: a dump alone cannot test guesses against them either. A code is matched to its time
step, so the caller can refuse a step that was used already (a replayed code).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

import pyotp
import segno

from activities.binance.key_vault import MasterKeyring, SealedSecret

STEP_S = 30
DIGITS = 6
# A code of the previous or next step still counts (clock drift between phone and server).
TOLERANCE_STEPS = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_HALF = 5
_TOTP_CODE = re.compile(r"^\d{6}$")
_RECOVERY_CODE = re.compile(rf"^[{_RECOVERY_ALPHABET}]{{{2 * _RECOVERY_HALF}}}$")


def new_secret() -> str:
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg_data_uri(uri: str) -> str:
    """The provisioning URI as a QR code, an SVG data URI a page can show as an image."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def current_step(now_s: float | None = None) -> int:
    return int((time.time() if now_s is None else now_s) // STEP_S)


def matching_step(secret: str, code: str, now_s: float | None = None) -> int | None:
    """The time step ``code`` belongs to within the tolerance, or None when it matches none."""
    code = code.strip().replace(" ", "")
    if not _TOTP_CODE.match(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    step = current_step(now_s)
    for candidate in range(step - TOLERANCE_STEPS, step + TOLERANCE_STEPS + 1):
        if hmac.compare_digest(totp.at(candidate * STEP_S), code):
            return candidate
    return None


def looks_like_recovery_code(code: str) -> bool:
    return bool(_RECOVERY_CODE.match(normalize_recovery_code(code)))


def normalize_recovery_code(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def new_recovery_codes() -> list[str]:
    codes = ("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(2 * _RECOVERY_HALF))
             for _ in range(RECOVERY_CODE_COUNT))
    return [f"{c[:_RECOVERY_HALF]}-{c[_RECOVERY_HALF:]}" for c in codes]


def recovery_code_digest(keyring: MasterKeyring, user_id: str, code: str) -> str:
    key = hashlib.sha256(b"durabot:recovery-codes:v1:" + keyring.keys[keyring.current_id]).digest()
    return hmac.new(key, f"{user_id}:{normalize_recovery_code(code)}".encode(), hashlib.sha256).hexdigest()


def _context(user_id: str) -> bytes:
    return f"durabot:totp:v1:{user_id}".encode()


def seal_secret(keyring: MasterKeyring, user_id: str, secret: str) -> dict[str, Any]:
    sealed = keyring.seal(secret.encode(), _context(user_id))
    return {"master_key_id": sealed.master_key_id, "nonce": sealed.nonce, "ciphertext": sealed.ciphertext}


def open_secret(keyring: MasterKeyring, user_id: str, doc: Mapping[str, Any]) -> str:
    sealed = SealedSecret(doc["master_key_id"], bytes(doc["nonce"]), bytes(doc["ciphertext"]))
    return keyring.open(sealed, _context(user_id)).decode()
