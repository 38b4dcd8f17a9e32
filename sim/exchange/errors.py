"""Binance error replies: ``{"code": <negative int>, "msg": <text>}`` with Binance's HTTP statuses."""

from __future__ import annotations

from starlette.responses import JSONResponse


class BinanceApiError(Exception):
    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"code": self.code, "msg": self.msg}, status_code=self.http_status, headers=headers)


def invalid_symbol() -> BinanceApiError:
    return BinanceApiError(-1121, "Invalid symbol.")


def invalid_interval() -> BinanceApiError:
    return BinanceApiError(-1120, "Invalid interval.")


def mandatory_missing(name: str) -> BinanceApiError:
    return BinanceApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal_chars(name: str, legal: str) -> BinanceApiError:
    return BinanceApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def invalid_value(name: str) -> BinanceApiError:
    return BinanceApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


def too_much_weight(limit: int) -> BinanceApiError:
    return BinanceApiError(
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per "
        "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
        http_status=429,
    )


def ip_banned(until_ms: int) -> BinanceApiError:
    return BinanceApiError(
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
        http_status=418,
    )


def server_error(http_status: int) -> BinanceApiError:
    return BinanceApiError(
        -1001, "Internal error; unable to process your request. Please try again.", http_status=http_status
    )
