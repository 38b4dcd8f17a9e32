"""Bearer keys: any non-empty key, or only the configured ones. A key is compared, never kept."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from sim.xai.errors import ApiError


def check_key(headers: Headers, api_keys: tuple[str, ...] | None) -> None:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(401, "No API key provided: send Authorization: Bearer <key>.", code="invalid_api_key")
    if api_keys is not None and not any(hmac.compare_digest(key.encode(), k.encode()) for k in api_keys):
        raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
