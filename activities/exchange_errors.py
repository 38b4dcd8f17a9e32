"""Exchange failures as our own types: temporary (retry later) versus permanent (fix the request).

Every error carries the vendor's code and message when the exchange sent one, and the HTTP status.
"""

from __future__ import annotations

# Binance codes that describe the exchange's state, not a fault in our request.
TEMPORARY_BINANCE_CODES = frozenset({-1000, -1001, -1003, -1004, -1006, -1007, -1008, -1015, -1016, -1021})


class ExchangeError(Exception):
    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        return " | ".join(parts)


class TemporaryExchangeError(ExchangeError):
    """Worth retrying later: overload, rate limits, timeouts, lost connections, unknown status."""


class PermanentExchangeError(ExchangeError):
    """Retrying the same request cannot help: bad symbol, interval or parameters, auth failures."""


class RateLimitedError(TemporaryExchangeError):
    """HTTP 429: nothing may be sent before ``retry_after_s`` has passed."""

    def __init__(self, message: str, *, retry_after_s: float, code: int | None = None, http_status: int = 429):
        super().__init__(message, code=code, http_status=http_status)
        self.retry_after_s = retry_after_s


class IpBannedError(RateLimitedError):
    """HTTP 418: the exchange banned our IP; the client refuses to send until the ban ends."""

    def __init__(self, message: str, *, retry_after_s: float, code: int | None = None) -> None:
        super().__init__(message, retry_after_s=retry_after_s, code=code, http_status=418)


class ExecutionUnknownError(TemporaryExchangeError):
    """The request may have been executed: a timeout or a dropped connection after sending, a 5xx
    "unknown error", -1006/-1007, HTTP 408. An order must be looked up, never sent again."""


class BadExchangeDataError(TemporaryExchangeError):
    """The exchange answered with a body we refuse to use (malformed JSON, wrong shape)."""


# Binance's codes for "sent, but no answer came back from the matching engine", and its generic
# internal errors (-1000 unknown, -1001 disconnected), which do not prove an order was refused.
EXECUTION_UNKNOWN_CODES = frozenset({-1000, -1001, -1006, -1007})
# The 503 text that means the request failed before execution (anything else 5xx may have executed).
SERVICE_UNAVAILABLE_TEXT = "Service Unavailable"


def error_from_reply(http_status: int, code: int | None, message: str) -> ExchangeError:
    """Classify a non-2xx Binance reply other than 429/418 (those carry Retry-After)."""
    if code in EXECUTION_UNKNOWN_CODES or http_status == 408:
        return ExecutionUnknownError(message, code=code, http_status=http_status)
    if http_status >= 500 and code != -1008 and SERVICE_UNAVAILABLE_TEXT not in message:
        return ExecutionUnknownError(message, code=code, http_status=http_status)
    if http_status >= 500 or (code is not None and code in TEMPORARY_BINANCE_CODES):
        return TemporaryExchangeError(message, code=code, http_status=http_status)
    return PermanentExchangeError(message, code=code, http_status=http_status)
