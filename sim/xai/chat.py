"""``POST /v1/chat/completions`` as a bare ASGI endpoint: faults, key, checks, answer, log.

It sits outside Starlette because one fault must close the connection with no answer at all, and
only uvicorn can do that: an endpoint that returns ``DROPPED`` (any non-None value) makes uvicorn
close the transport without writing a byte, where Starlette would turn any error into a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from sim.xai.answers import compose, malformed, schema_broken
from sim.xai.auth import check_key
from sim.xai.completion import completion_body, limited
from sim.xai.config import SimXaiConfig
from sim.xai.errors import ApiError
from sim.xai.faults import Faults
from sim.xai.ledger import Ledger
from sim.xai.validation import parse_chat_request

log = logging.getLogger(__name__)

PATH = "/v1/chat/completions"


class _Dropped:
    def __repr__(self) -> str:
        return "sim-xai-dropped-connection"


DROPPED = _Dropped()


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body; None when the client went away; raises 413 past ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than {limit} bytes", code="request_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _model_of(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    model = doc.get("model") if isinstance(doc, dict) else None
    return model if isinstance(model, str) else None


class ChatEndpoint:
    def __init__(self, config: SimXaiConfig, faults: Faults, ledger: Ledger) -> None:
        self.config = config
        self.faults = faults
        self.ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> object | None:
        if scope["method"] != "POST":
            error = ApiError(405, f"{scope['method']} is not allowed on {PATH}; use POST", code="method_not_allowed")
            await JSONResponse(error.body(), error.status, headers={"Allow": "POST"})(scope, receive, send)
            return None
        try:
            body = await _read_body(receive, self.config.max_body_bytes)
        except ApiError as exc:
            await JSONResponse(exc.body(), exc.status)(scope, receive, send)
            return None
        if body is None:
            return None
        reply = await self.answer(Headers(scope=scope), body)
        if reply is DROPPED:
            return DROPPED
        assert isinstance(reply, JSONResponse)
        await reply(scope, receive, send)
        return None

    async def answer(self, headers: Headers, body: bytes) -> JSONResponse | _Dropped:
        wall_ms, model, faults = int(time.time() * 1000), _model_of(body), self.faults

        def refuse(error: ApiError, fault: str | None) -> JSONResponse:
            self.ledger.record(wall_ms=wall_ms, path=PATH, model=model, status=error.status, fault=fault,
                               error_code=error.code)
            return JSONResponse(error.body(), error.status, headers=error.headers)

        fault = "slow" if faults.take("slow") else None
        delay_ms = faults.latency_ms + (faults.slow_ms if fault else 0.0)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if faults.down:
            return refuse(ApiError(503, "The service is temporarily unavailable (sim outage).", type_="server_error",
                                   code="service_unavailable"), "down")
        if faults.take("drop_connection"):
            self.ledger.record(wall_ms=wall_ms, path=PATH, model=model, status=None, fault="drop_connection")
            return DROPPED
        if faults.take("http_429"):
            return refuse(ApiError(429, "Rate limit exceeded: too many requests, retry later.", type_="requests",
                                   code="rate_limit_exceeded", headers={"Retry-After": str(faults.retry_after_s)}),
                          "http_429")
        if faults.take("http_5xx"):
            return refuse(ApiError(faults.http_5xx_status, "The server had an error while processing your request.",
                                   type_="server_error", code="internal_error"), "http_5xx")
        try:
            check_key(headers, self.config.api_keys)
            request = parse_chat_request(body, self.config.models)
            answer = compose(request)
        except ApiError as exc:
            return refuse(exc, fault)
        except Exception:  # a sim bug must still answer like the API does, and show in the log
            log.exception("sim xai: answering failed")
            return refuse(ApiError(500, "The sim failed to answer.", type_="server_error", code="internal_error"),
                          fault)
        if faults.take("malformed"):
            answer, fault = malformed(answer), "malformed"
        elif faults.take("schema_break"):
            answer, fault = schema_broken(answer), "schema_break"
        answer = limited(answer, request.max_tokens)
        completion: dict[str, Any] = completion_body(request, answer, int(time.time()))
        choice = completion["choices"][0]
        self.ledger.record(
            wall_ms=wall_ms, path=PATH, model=request.model, status=200, fault=fault, usage=completion["usage"],
            finish_reason=choice["finish_reason"],
            tool_calls=[call["function"]["name"] for call in choice["message"].get("tool_calls", [])],
            response_format=request.response_format.label if request.response_format else None,
        )
        return JSONResponse(completion)
