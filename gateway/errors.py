"""The application layer's domain errors as HTTP answers: one place, every router.

| error | status | body |
|---|---|---|
| ``KeyRequired`` | 400 | ``{"detail": {"field": "Idempotency-Key", "reason"}}`` |
| ``Rejected`` | 422 | ``{"detail": {"field", "reason"}}`` |
| ``NotFound`` | 404 | ``{"detail": message}`` |
| ``Conflict`` | 409 | ``{"detail": {"field", "reason"}}`` |
| ``Unauthenticated`` | 401 | ``{"detail": message}`` with ``WWW-Authenticate: Bearer`` |
| ``Forbidden`` | 403 | ``{"detail": message}`` |
| ``StepUpRequired`` | 403 | ``{"detail": message, "step_up": "code" or "enrol"}`` |
| ``TooManyRequests`` | 429 | ``{"detail": message}`` with ``Retry-After`` |
| ``UpstreamFailed`` | 502 | ``{"detail": message}`` |
| ``Unavailable`` | 503 | ``{"detail": message}`` (with ``Retry-After`` when known) |
| ``NeedsConfirmation`` | 202 | ``{"detail": message, "confirmation_id"}`` |
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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
    StepUpRequired,
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


class StepUpOut(BaseModel):
    """A 403 of an action that needs two-factor: enter a code (``code``) or set two-factor up (``enrol``)."""

    detail: str
    step_up: str = Field(description='"code": enter a two-factor code (POST /api/auth/2fa/step-up) and retry; '
                                     '"enrol": set two-factor authentication up first')


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
    if isinstance(exc, StepUpRequired):
        return JSONResponse({"detail": exc.message, "step_up": exc.need}, 403)
    if isinstance(exc, NeedsConfirmation):
        return JSONResponse({"detail": exc.message, "confirmation_id": exc.confirmation_id}, 202)
    status = {NotFound: 404, Forbidden: 403, UpstreamFailed: 502}.get(type(exc), 500)
    return JSONResponse({"detail": exc.message}, status_code=status)


def _field(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def invalid_request(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, in the one shape every route answers. The rejected values are left out: a
    NaN cannot be encoded as JSON, and a mistyped password or exchange secret must not travel back."""
    errors: list[dict[str, Any]] = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    return JSONResponse({"detail": {"field": _field(first["loc"]), "reason": first["msg"]}, "errors": errors},
                        status_code=422)


def _one_422_schema(app: FastAPI) -> None:
    """Declare that 422 shape in the OpenAPI document too, where FastAPI would name its own."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        text = json.dumps(schema).replace('"#/components/schemas/HTTPValidationError"',
                                          '"#/components/schemas/RejectedOut"')
        fixed = json.loads(text)
        components = fixed.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        if "RejectedOut" not in components:
            components["RejectedOut"] = RejectedOut.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(components["RejectedOut"].pop("$defs", {}))
        app.openapi_schema = fixed
        return fixed

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return invalid_request(exc)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    _one_422_schema(app)
