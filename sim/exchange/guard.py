"""The REST guard in front of Binance paths: request weight per IP per wall-clock minute,
Retry-After windows and IP bans, injected faults and latency, and the request log."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sim.exchange.errors import BinanceApiError, ip_banned, server_error, too_much_weight
from sim.exchange.faults import Faults, LoggedRequest, RequestLog

_FIXED_WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/account": 20,
    # Spot trading.
    "POST /api/v3/order": 1,
    "DELETE /api/v3/order": 1,
    "/api/v3/order": 4,
    "DELETE /api/v3/openOrders": 1,
    "/api/v3/allOrders": 20,
    "/api/v3/myTrades": 20,
    "/fapi/v1/ping": 1,
    "/fapi/v1/time": 1,
    "/fapi/v1/exchangeInfo": 1,
    "/fapi/v1/premiumIndex": 1,
    "/fapi/v1/fundingRate": 1,
    # USDⓈ-M trading (new orders weigh 0 on the IP limit and count on the account's order limits).
    "POST /fapi/v1/order": 0,
    "POST /fapi/v1/algoOrder": 0,
    "/fapi/v1/order": 1,
    "/fapi/v1/algoOrder": 1,
    "/fapi/v1/allOrders": 5,
    "/fapi/v1/allAlgoOrders": 5,
    "/fapi/v1/allOpenOrders": 1,
    "/fapi/v1/algoOpenOrders": 1,
    "/fapi/v1/userTrades": 5,
    "/fapi/v1/symbolConfig": 5,
    "/fapi/v1/income": 30,
    "/fapi/v2/account": 5,
    "/fapi/v3/account": 5,
    "/fapi/v2/positionRisk": 5,
    "/fapi/v3/positionRisk": 5,
    "GET /fapi/v1/positionSide/dual": 30,
    "/fapi/v1/positionSide/dual": 1,
    "/fapi/v1/leverage": 1,
    "/fapi/v1/marginType": 1,
    "/fapi/v1/listenKey": 1,
}


def request_weight(path: str, params: QueryParams, method: str = "GET") -> int:
    """Binance's published weights for the served endpoints."""
    if f"{method} {path}" in _FIXED_WEIGHTS:
        return _FIXED_WEIGHTS[f"{method} {path}"]
    if path == "/api/v3/openOrders":
        return 6 if params.get("symbol") else 80
    if path in ("/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders"):
        return 1 if params.get("symbol") else 40
    if path in _FIXED_WEIGHTS:
        return _FIXED_WEIGHTS[path]
    if path == "/api/v3/ticker/24hr":
        return 2 if params.get("symbol") else 80
    if path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
        return 2 if params.get("symbol") else 4
    if path == "/fapi/v1/ticker/bookTicker":
        return 2 if params.get("symbol") else 5
    if path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines"):
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 500
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
    return 1


@dataclass
class _ClientLimits:
    minute: int = -1
    used_weight: int = 0
    retry_after_until: float = 0.0
    banned_until: float = 0.0


class RestGuard:
    def __init__(self, app: ASGIApp, faults: Faults, log: RequestLog, weight_limit: int) -> None:
        self.app = app
        self.faults = faults
        self.log = log
        self.weight_limit = weight_limit
        self._clients: dict[str, _ClientLimits] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/api/", "/fapi/")):
            await self.app(scope, receive, send)
            return
        now = time.time()
        params = QueryParams(scope.get("query_string", b""))
        client = scope["client"][0] if scope.get("client") else "unknown"
        weight = request_weight(path, params, scope.get("method", "GET"))
        limits = self._clients.setdefault(client, _ClientLimits())
        minute = int(now // 60)
        if limits.minute != minute:
            limits.minute, limits.used_weight = minute, 0
        limits.used_weight += weight
        headers = {"X-MBX-USED-WEIGHT-1M": str(limits.used_weight)}

        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000.0)
        refusal = self._refusal(limits, now, minute)
        status_box: list[int] = []
        # An order fault may ask for the connection to be dropped instead of the reply being sent.
        control: dict[str, bool] = {}
        scope["sim.reply_control"] = control
        if refusal is not None:
            error, retry_after = refusal
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            await error.response(headers)(scope, receive, self._recording(send, status_box, {}))
        else:
            await self.app(scope, receive, self._recording(send, status_box, headers, control))
            if control.get("drop"):
                _close_connection(send)
        self.log.add(
            LoggedRequest(
                int(now * 1000),
                scope.get("method", "GET"),
                path,
                scope.get("query_string", b"").decode(),
                client,
                status_box[0] if status_box else 0,
                weight,
            )
        )

    def _refusal(self, limits: _ClientLimits, now: float, minute: int) -> tuple[BinanceApiError, int | None] | None:
        if now < limits.banned_until:
            return ip_banned(int(limits.banned_until * 1000)), _seconds_until(limits.banned_until, now)
        if now < limits.retry_after_until:
            # Still sending inside a Retry-After window: Binance escalates to an IP ban.
            limits.banned_until = now + self.faults.ban_s
            return ip_banned(int(limits.banned_until * 1000)), self.faults.ban_s
        if self.faults.http_429_remaining > 0:
            self.faults.http_429_remaining -= 1
            limits.retry_after_until = now + self.faults.retry_after_s
            return too_much_weight(self.weight_limit), self.faults.retry_after_s
        if limits.used_weight > self.weight_limit:
            limits.retry_after_until = (minute + 1) * 60.0
            return too_much_weight(self.weight_limit), _seconds_until(limits.retry_after_until, now)
        if self.faults.http_5xx_remaining > 0:
            self.faults.http_5xx_remaining -= 1
            return server_error(self.faults.http_5xx_status), None
        return None

    @staticmethod
    def _recording(
        send: Send, status_box: list[int], extra_headers: dict[str, str], control: dict[str, bool] | None = None
    ) -> Send:
        async def wrapped(message: Message) -> None:
            if control is not None and control.get("drop"):
                return
            if message["type"] == "http.response.start":
                status_box.append(message["status"])
                if extra_headers:
                    message = dict(message)
                    message["headers"] = list(message.get("headers", [])) + [
                        (k.lower().encode(), v.encode()) for k, v in extra_headers.items()
                    ]
            await send(message)

        return wrapped


def _close_connection(send: Send) -> None:
    """Close the client's connection without a reply: uvicorn's ``send`` belongs to its request cycle,
    which holds the transport."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("the ASGI server gives no transport to drop the connection with")
    transport.close()


def _seconds_until(deadline: float, now: float) -> int:
    return max(1, int(deadline - now + 0.999))
