"""Signed (USER_DATA) Binance REST calls: HMAC-SHA256 over the query, ``X-MBX-APIKEY``, recvWindow.

Used to test a saved key (``/api/v3/account`` and ``/sapi/v1/account/apiRestrictions``) and
by the order activities (``futures_orders``). The client takes decrypted credentials and keeps them out of every log
line, exception and repr: errors carry the exchange's code and message, never the key."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx

from activities.binance.key_vault import ApiCredentials
from activities.binance.shared_gate import SharedRequestGate
from activities.exchange_errors import (
    BadExchangeDataError,
    ExecutionUnknownError,
    IpBannedError,
    RateLimitedError,
    TemporaryExchangeError,
    error_from_reply,
)

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000


def sign_query(query: str, api_secret: str) -> str:
    """Binance's signature: hex HMAC-SHA256 of the exact query string, keyed by the secret."""
    return hmac.new(api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SpotBalance:
    asset: str
    free: float
    locked: float


@dataclass(frozen=True)
class AccountSummary:
    can_trade: bool
    can_withdraw: bool
    can_deposit: bool
    account_type: str
    permissions: tuple[str, ...]
    balances: tuple[SpotBalance, ...] = ()  # the spot wallet, assets held only


@dataclass(frozen=True)
class ApiRestrictions:
    ip_restrict: bool
    enable_reading: bool
    enable_spot_and_margin_trading: bool
    enable_withdrawals: bool
    enable_internal_transfer: bool
    enable_margin: bool
    enable_futures: bool
    permits_universal_transfer: bool


class SignedBinanceClient:
    def __init__(
        self,
        base_url: str,
        credentials: ApiCredentials,
        *,
        recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
        timeout_s: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
        gate: SharedRequestGate | None = None,
    ) -> None:
        if not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS:
            raise ValueError(f"recv_window_ms must be in 1..{MAX_RECV_WINDOW_MS}, got {recv_window_ms}")
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.recv_window_ms = recv_window_ms
        self.time_offset_ms = 0
        self._gate = gate
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout_s)

    def __repr__(self) -> str:
        return f"SignedBinanceClient({self.base_url!r}, key={self._credentials.masked_key})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> SignedBinanceClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def sync_time(self) -> int:
        """Measure the server clock offset so timestamps land inside recvWindow on a skewed host."""
        sent = time.time()
        reply = await self._send("/api/v3/time", None, signed=False)
        received = time.time()
        server = reply.get("serverTime") if isinstance(reply, dict) else None
        if not isinstance(server, int):
            raise BadExchangeDataError("/api/v3/time: no integer serverTime in the reply")
        self.time_offset_ms = server - int((sent + received) / 2 * 1000)
        return self.time_offset_ms

    async def account(self) -> AccountSummary:
        reply = await self._send("/api/v3/account", {"omitZeroBalances": "true"}, signed=True)
        try:
            return AccountSummary(
                can_trade=_flag(reply, "canTrade"),
                can_withdraw=_flag(reply, "canWithdraw"),
                can_deposit=_flag(reply, "canDeposit"),
                account_type=str(reply.get("accountType", "")),
                permissions=tuple(str(p) for p in reply.get("permissions", [])),
                balances=tuple(b for b in (SpotBalance(str(x["asset"]), float(x["free"]), float(x["locked"]))
                                           for x in reply.get("balances", [])) if b.free or b.locked),
            )
        except (TypeError, AttributeError, ValueError, KeyError) as exc:
            raise BadExchangeDataError(f"/api/v3/account: unexpected reply ({exc})") from None

    async def api_restrictions(self) -> ApiRestrictions:
        reply = await self._send("/sapi/v1/account/apiRestrictions", {}, signed=True)
        try:
            return ApiRestrictions(
                ip_restrict=_flag(reply, "ipRestrict"),
                enable_reading=_flag(reply, "enableReading"),
                enable_spot_and_margin_trading=_flag(reply, "enableSpotAndMarginTrading"),
                enable_withdrawals=_flag(reply, "enableWithdrawals"),
                enable_internal_transfer=_flag(reply, "enableInternalTransfer", default=False),
                enable_margin=_flag(reply, "enableMargin", default=False),
                enable_futures=_flag(reply, "enableFutures", default=False),
                permits_universal_transfer=_flag(reply, "permitsUniversalTransfer", default=False),
            )
        except (TypeError, AttributeError, ValueError) as exc:
            raise BadExchangeDataError(f"/sapi/v1/account/apiRestrictions: unexpected reply ({exc})") from None

    async def signed_request(self, method: str, path: str, params: dict[str, str], *, weight: int = 1,
                             order: bool = False, priority: bool = False) -> Any:
        """A signed call of any USER_DATA/TRADE endpoint, through the shared gate when there is one (a
        closed gate raises ``RateLimitedError`` before anything is sent); errors as ``_send`` raises them."""
        if self._gate is not None:
            await self._gate.before(weight, order=order, priority=priority)
        return await self._send(path, params, signed=True, method=method)

    async def keyed_request(self, method: str, path: str, *, weight: int = 1) -> Any:
        """A USER_STREAM call (the listen key): the API key header, no signature."""
        if self._gate is not None:
            await self._gate.before(weight, order=False, priority=False)
        return await self._send(path, None, signed=False, method=method, keyed=True)

    async def _send(self, path: str, params: dict[str, str] | None, *, signed: bool, method: str = "GET",
                    keyed: bool = False) -> Any:
        """One request, sent once. Failures before sending (no connection) are temporary; failures
        after it may have reached the exchange (timeouts, dropped connections) are ``ExecutionUnknownError``."""
        headers: dict[str, str] = {}
        url = self.base_url + path
        if signed:
            query = urlencode({
                **(params or {}),
                "recvWindow": str(self.recv_window_ms),
                "timestamp": str(int(time.time() * 1000) + self.time_offset_ms),
            })
            url += f"?{query}&signature={sign_query(query, self._credentials.api_secret)}"
            headers["X-MBX-APIKEY"] = self._credentials.api_key
        else:
            if params:
                url += f"?{urlencode(params)}"
            if keyed:
                headers["X-MBX-APIKEY"] = self._credentials.api_key
        try:
            response = await self._http.request(method, url, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TemporaryExchangeError(f"could not reach the exchange for {path}: {type(exc).__name__}") from None
        except httpx.TimeoutException:
            raise ExecutionUnknownError(f"timed out waiting for {method} {path}") from None
        except httpx.TransportError as exc:
            raise ExecutionUnknownError(f"the connection broke during {method} {path}: {type(exc).__name__}") from None
        if self._gate is not None:
            await self._gate.after(response.status_code, response.headers)
        if response.status_code in (418, 429):
            raise _rate_limited(path, response)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            if response.status_code >= 400:
                raise error_from_reply(response.status_code, None,
                                       f"{path}: HTTP {response.status_code} {response.text[:120]}") from None
            raise BadExchangeDataError(f"{path}: the exchange sent malformed JSON") from None
        if response.status_code >= 400:
            code = body.get("code") if isinstance(body, dict) and isinstance(body.get("code"), int) else None
            message = str(body.get("msg", "")) if isinstance(body, dict) else ""
            raise error_from_reply(response.status_code, code, f"{path}: {message[:200]}")
        return body


def _rate_limited(path: str, response: httpx.Response) -> RateLimitedError:
    try:
        retry_after = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        retry_after = 1.0
    code = None
    with contextlib.suppress(ValueError, AttributeError):
        code = response.json().get("code")
    if response.status_code == 418:
        return IpBannedError(f"{path}: the exchange banned this IP", retry_after_s=retry_after, code=code)
    return RateLimitedError(f"{path}: rate limited", retry_after_s=retry_after, code=code)


def _flag(reply: Any, name: str, *, default: bool | None = None) -> bool:
    value = reply.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name} is not a boolean")
    return value
