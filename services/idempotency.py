"""Idempotency keys of writes: the client's key becomes the Temporal update ID (``core.idempotency``).

The update ID hashes the user, the route (the use case), the key and the request as the caller sent
it, so the same key sent to another route, or by another user, never finds an unrelated result. The
session keeps what each key applied (with the request's hash) for 24 hours: a repeat returns the first
result, and the same key with another request is refused.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import Any

from core.idempotency import write_update_id
from services.errors import KeyRequired, Rejected

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


def checked_key(key: str | None, *, required: bool) -> str | None:
    if key is None:
        if required:
            raise KeyRequired()
        return None
    if not KEY_PATTERN.match(key):
        raise Rejected("Idempotency-Key", "an Idempotency-Key is 8 to 128 letters, digits, '-', '_', '.' or ':'")
    return key


def request_body(request: Any) -> bytes:
    """The caller's request as canonical JSON (dataclasses as objects), what a key is bound to."""
    plain = dataclasses.asdict(request) if dataclasses.is_dataclass(request) and not isinstance(request, type) \
        else request
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), default=str).encode()


def update_id(user_id: str, route: str, key: str | None, request: Any) -> str:
    """The Temporal update ID of a write (a fresh one when the caller gave no key)."""
    if key is None:
        return f"w-{uuid.uuid4().hex}"
    return write_update_id(user_id, route, key, request_body(request))
