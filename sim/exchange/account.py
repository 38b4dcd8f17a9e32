"""Signed account endpoints and the API keys they accept.

``GET /api/v3/account`` and ``GET /sapi/v1/account/apiRestrictions`` check what Binance checks, in
Binance's order and with its codes: the ``X-MBX-APIKEY`` header (-2014 malformed, -2015 unknown key
or a caller IP outside the key's allowlist), ``timestamp`` and ``signature`` present (-1102), the
HMAC-SHA256 signature over the query string before ``&signature=`` (-1022), and the timestamp inside
``recvWindow`` (-1021; recvWindow at most 60000, else -1131).

Keys exist only once provisioned: ``POST /sim/keys`` (JSON: optional ``api_key``/``api_secret``,
``enable_withdrawals``, ``ip_restrict`` with ``allowed_ips``, ``enable_reading``,
``enable_spot_and_margin_trading``, ``enable_futures``, ``enable_margin``, ``balances``) answers
the key pair; ``GET /sim/keys`` lists the keys (masked) with their restrictions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.exchange.errors import BinanceApiError, illegal_chars, mandatory_missing
from sim.exchange.rest_common import binance_endpoint, json_reply, wall_ms

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
# Binance refuses timestamps more than a second ahead of its clock, whatever the recvWindow.
MAX_AHEAD_MS = 1000
_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{16,128}$")
_INTEGER = re.compile(r"^[0-9]{1,20}$")
# The key's spot wallet as (asset, free, locked) texts: the balances trading has moved.
SpotBalances = Callable[["SimApiKey"], list[tuple[str, str, str]]]
_FLAGS = (
    "enable_reading",
    "enable_spot_and_margin_trading",
    "enable_withdrawals",
    "enable_futures",
    "enable_margin",
    "enable_internal_transfer",
    "permits_universal_transfer",
    "ip_restrict",
)


@dataclass
class SimApiKey:
    api_key: str
    api_secret: str = field(repr=False)
    enable_reading: bool = True
    enable_spot_and_margin_trading: bool = False
    enable_withdrawals: bool = False
    enable_futures: bool = False
    enable_margin: bool = False
    enable_internal_transfer: bool = False
    permits_universal_transfer: bool = False
    ip_restrict: bool = False
    allowed_ips: tuple[str, ...] = ()
    balances: dict[str, str] = field(default_factory=lambda: {"USDT": "10000.00000000"})
    created_ms: int = field(default_factory=wall_ms)

    def public_view(self) -> dict[str, Any]:
        view = asdict(self)
        del view["api_secret"]
        view["api_key"] = "****" + self.api_key[-4:]
        return view


class SimKeyStore:
    def __init__(self) -> None:
        self.keys: dict[str, SimApiKey] = {}
        self.on_change: Callable[[], None] = lambda: None

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(key) for key in self.keys.values()]

    def load(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            key = SimApiKey(**{**record, "allowed_ips": tuple(record.get("allowed_ips", ()))})
            self.keys[key.api_key] = key

    def provision(self, body: dict[str, Any]) -> SimApiKey:
        """Add a key from a ``POST /sim/keys`` body; bad fields raise ``ValueError``."""
        unknown = set(body) - {"api_key", "api_secret", "allowed_ips", "balances", *_FLAGS}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        api_key = body.get("api_key") or secrets.token_hex(32)
        api_secret = body.get("api_secret") or secrets.token_hex(32)
        for name, value in (("api_key", api_key), ("api_secret", api_secret)):
            if not isinstance(value, str) or not _KEY_FORMAT.match(value):
                raise ValueError(f"{name} must be 16-128 letters and digits")
        flags = {name: body[name] for name in _FLAGS if name in body}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise ValueError(f"{', '.join(_FLAGS)} must be booleans")
        allowed_ips = body.get("allowed_ips", [])
        if not isinstance(allowed_ips, list) or not all(isinstance(ip, str) for ip in allowed_ips):
            raise ValueError("allowed_ips must be a list of IP addresses")
        balances = body.get("balances", {"USDT": "10000.00000000"})
        if not isinstance(balances, dict) or not all(isinstance(v, str) for v in balances.values()):
            raise ValueError("balances must map assets to decimal strings")
        key = SimApiKey(api_key, api_secret, allowed_ips=tuple(allowed_ips), balances=balances, **flags)
        self.keys[api_key] = key
        self.on_change()
        return key


def _rejected_key() -> BinanceApiError:
    return BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", http_status=401)


def api_key_of(request: Request, store: SimKeyStore) -> SimApiKey:
    """The provisioned key named by ``X-MBX-APIKEY`` (all that USER_STREAM endpoints need)."""
    header = request.headers.get("X-MBX-APIKEY", "")
    if not _KEY_FORMAT.match(header):
        raise BinanceApiError(-2014, "API-key format invalid.", http_status=401)
    key = store.keys.get(header)
    client_ip = request.client.host if request.client else ""
    if key is None or (key.ip_restrict and client_ip not in key.allowed_ips):
        raise _rejected_key()
    return key


def request_params(raw_query: str, body: str) -> QueryParams:
    """Query and form-body parameters together, as Binance reads them."""
    return QueryParams("&".join(part for part in (raw_query, body) if part))


def _split_signature(raw_query: str, body: str) -> tuple[str, str]:
    """(signed payload, signature): the signature is the last parameter of the query or the body;
    the payload is Binance's totalParams, the query string concatenated with the body."""
    for part, in_body in ((body, True), (raw_query, False)):
        head, sep, signature = part.rpartition("signature=")
        if sep and (head == "" or head.endswith("&")):
            head = head[:-1]
            return (raw_query + head if in_body else head + body), signature
    return raw_query + body, ""


def authenticate(request: Request, store: SimKeyStore, body: str = "") -> SimApiKey:
    """The key a signed request was made with, or the Binance error that refuses it. ``body`` is a
    form-encoded request body (POST/PUT/DELETE parameters may come there)."""
    key = api_key_of(request, store)
    raw_query = request.scope.get("query_string", b"").decode()
    payload, signature = _split_signature(raw_query, body)
    if not signature:
        raise mandatory_missing("signature")
    params = request_params(raw_query, body)
    for name in ("timestamp", "recvWindow"):
        value = params.get(name)
        if value is not None and not _INTEGER.match(value):
            raise illegal_chars(name, "^[0-9]{1,20}$")
    if not params.get("timestamp"):
        raise mandatory_missing("timestamp")
    recv_window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
    if recv_window > MAX_RECV_WINDOW_MS:
        raise BinanceApiError(-1131, "recvWindow must be less than 60000")
    expected = hmac.new(key.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise BinanceApiError(-1022, "Signature for this request is not valid.")
    check_timestamp(int(params["timestamp"]), recv_window)
    return key


def check_timestamp(timestamp: int, recv_window: int) -> None:
    """-1021 unless the request's timestamp is inside recvWindow and not ahead of the server's clock."""
    now = wall_ms()
    if timestamp >= now + MAX_AHEAD_MS:
        raise BinanceApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now - timestamp > recv_window:
        raise BinanceApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


def account_routes(store: SimKeyStore, spot_balances: SpotBalances) -> list[Route]:
    @binance_endpoint
    async def account(request: Request) -> Response:
        key = authenticate(request, store)
        if not key.enable_reading:
            raise _rejected_key()
        omit_zero = request.query_params.get("omitZeroBalances") == "true"
        balances = [
            {"asset": asset, "free": free, "locked": locked}
            for asset, free, locked in spot_balances(key)
            if not (omit_zero and float(free) == 0 and float(locked) == 0)
        ]
        permissions = ["SPOT"] + (["MARGIN"] if key.enable_margin else [])
        return json_reply(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": "0.00100000",
                    "taker": "0.00100000",
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": key.enable_spot_and_margin_trading,
                "canWithdraw": key.enable_withdrawals,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": key.created_ms,
                "accountType": "SPOT",
                "balances": balances,
                "permissions": permissions,
                "uid": int(hashlib.sha256(key.api_key.encode()).hexdigest()[:8], 16),
            }
        )

    @binance_endpoint
    async def api_restrictions(request: Request) -> Response:
        key = authenticate(request, store)
        return json_reply(
            {
                "ipRestrict": key.ip_restrict,
                "createTime": key.created_ms,
                "enableReading": key.enable_reading,
                "enableWithdrawals": key.enable_withdrawals,
                "enableInternalTransfer": key.enable_internal_transfer,
                "enableMargin": key.enable_margin,
                "enableFutures": key.enable_futures,
                "permitsUniversalTransfer": key.permits_universal_transfer,
                "enableVanillaOptions": False,
                "enableFixApiTrade": False,
                "enableFixReadOnly": False,
                "enableSpotAndMarginTrading": key.enable_spot_and_margin_trading,
                "enablePortfolioMarginTrading": False,
            }
        )

    async def sim_keys(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                key = store.provision(body)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(
                {**key.public_view(), "api_key": key.api_key, "api_secret": key.api_secret}, status_code=201
            )
        return JSONResponse([key.public_view() for key in store.keys.values()])

    return [
        Route("/api/v3/account", account),
        Route("/sapi/v1/account/apiRestrictions", api_restrictions),
        Route("/sim/keys", sim_keys, methods=["GET", "POST"]),
    ]
