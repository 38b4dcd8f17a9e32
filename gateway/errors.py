"""The application layer's domain errors as HTTP answers: one place, every router.

| error | status | body |
|---|---|---|
| ``KeyRequired`` | 400 | ``{"detail": {"field": "Idempotency-Key", "reason"}}`` |
| ``Rejected`` | 422 | ``{"detail": {"field", "reason"}}`` |
| ``NotFound`` | 404 | ``{"detail": message}`` |
| ``Conflict`` | 409 | ``{"detail": {"field", "reason"}}`` |
| ``Unauthenticated`` | 401 | ``{"detail": message}`` with ``WWW-Authenticate: Bearer`` |
| ``Forbidden`` | 403 | ``{"detail": message}`` |
| ``TooManyRequests`` | 429 | ``{"detail": message}`` with ``Retry-After`` |
| ``UpstreamFailed`` | 502 | ``{"detail": message}`` |
| ``Unavailable`` | 503 | ``{"detail": message}`` (with ``Retry-After`` when known) |
| ``NeedsConfirmation`` | 202 | ``{"detail": message, "confirmation_id"}`` |
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    KeyRequired,
    NeedsConfirmation,
    NotFound,
    Rejected,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
)

BEARER_CHALLENGE = 'Bearer error="invalid_token"'


class RejectionDetail(BaseModel):
    field: str | None = Field(description="the request field the reason is about, when known")
    reason: str


class RejectedOut(BaseModel):
    """A 400, 409 or 422: the field and the reason (a rejected write or invalid input)."""

    detail: RejectionDetail
    errors: list[dict[str, object]] | None = Field(None, description="each invalid field, for input errors")


def error_response(exc: DomainError) -> JSONResponse:
    if isinstance(exc, Rejected):
        status = 400 if isinstance(exc, KeyRequired) else 422
        return JSONResponse({"detail": {"field": exc.field, "reason": exc.reason}}, status_code=status)
    if isinstance(exc, Conflict):
        return JSONResponse({"detail": {"field": exc.field, "reason": exc.message}}, status_code=409)
    if isinstance(exc, Unauthenticated):
        return JSONResponse({"detail": exc.message}, 401, headers={"WWW-Authenticate": BEARER_CHALLENGE})
    if isinstance(exc, TooManyRequests):
        return JSONResponse({"detail": exc.message}, 429, headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        return JSONResponse({"detail": exc.message}, 503, headers=headers)
    if isinstance(exc, NeedsConfirmation):
        return JSONResponse({"detail": exc.message, "confirmation_id": exc.confirmation_id}, 202)
    status = {NotFound: 404, Forbidden: 403, UpstreamFailed: 502}.get(type(exc), 500)
    return JSONResponse({"detail": exc.message}, status_code=status)


def install(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return error_response(exc)

    app.add_exception_handler(DomainError, domain_error)
