"""What the exchange lists: symbols with their order filters, per market, and the check a session's
symbols pass before it follows them.

A futures account trades USDⓈ-M perpetuals quoted in its account currency; a spot account trades
spot symbols quoted in its account currency. Anything else is refused with the reason, so an
account never books money of two currencies as one. The listings are read from the exchange (the
sim exchange by default, Binance by base URL) and kept for ``LISTING_TTL_S``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from activities.binance.models import SymbolInfo
from activities.binance.rest import BinanceRestClient
from activities.exchange_errors import ExchangeError
from core.settings import Settings
from services.errors import NotFound, Rejected, Unavailable
from trading.models import SymbolSpec
from trading.settings import MarketType

LISTING_TTL_S = 600.0
EXCHANGE_TIMEOUT_S = 10.0
TRADING = "TRADING"


@dataclass(frozen=True)
class SymbolFilters:
    """One listed symbol as the API shows it: the filters an order must pass, and how many decimals
    its prices and quantities have (from the tick and step sizes)."""

    symbol: str
    market: str
    status: str
    base_asset: str
    quote_asset: str
    tick_size: float
    step_size: float
    min_qty: float
    min_notional: float
    price_decimals: int
    quantity_decimals: int

    def spec(self) -> SymbolSpec:
        return SymbolSpec(self.symbol, tick_size=self.tick_size, step_size=self.step_size,
                          min_notional=self.min_notional, min_qty=self.min_qty, quote_asset=self.quote_asset)


def _decimals(step: float) -> int:
    if step <= 0:
        return 8
    return max(0, round(-math.log10(step))) if step < 1 else 0


def _filters(info: SymbolInfo, market: MarketType) -> SymbolFilters:
    return SymbolFilters(
        symbol=info.symbol, market=market.value, status=info.status, base_asset=info.base_asset,
        quote_asset=info.quote_asset, tick_size=info.tick_size, step_size=info.step_size, min_qty=info.min_qty,
        min_notional=info.min_notional, price_decimals=_decimals(info.tick_size),
        quantity_decimals=_decimals(info.step_size),
    )


def market_type(market: str) -> MarketType:
    try:
        return MarketType(market)
    except ValueError:
        known = ", ".join(m.value for m in MarketType)
        raise Rejected("market", f"unknown market {market!r}; known: {known}") from None


class ExchangeSymbols:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._listings: dict[MarketType, tuple[float, dict[str, SymbolFilters]]] = {}
        self._lock = asyncio.Lock()

    async def listing(self, market: MarketType) -> dict[str, SymbolFilters]:
        """Every symbol the exchange lists on ``market`` (cached; one exchange call at a time)."""
        async with self._lock:
            cached = self._listings.get(market)
            if cached is not None and time.monotonic() - cached[0] < LISTING_TTL_S:
                return cached[1]
            try:
                async with BinanceRestClient(self.settings.exchange_rest_url,
                                             futures_base_url=self.settings.exchange_futures_url,
                                             timeout_s=EXCHANGE_TIMEOUT_S) as exchange:
                    infos = await exchange.exchange_info(market="usdm" if market is MarketType.FUTURES else "spot")
            except ExchangeError as exc:
                raise Unavailable(f"the exchange's symbol list cannot be read right now: {str(exc)[:200]}",
                                  retry_after_s=5) from None
            listing = {s: _filters(info, market) for s, info in sorted(infos.items())}
            self._listings[market] = (time.monotonic(), listing)
            return listing

    async def symbols(self, market: str, quote_asset: str | None = None) -> list[SymbolFilters]:
        listing = await self.listing(market_type(market))
        return [f for f in listing.values() if quote_asset is None or f.quote_asset == quote_asset.upper()]

    async def symbol(self, symbol: str, market: str) -> SymbolFilters:
        listing = await self.listing(market_type(market))
        found = listing.get(symbol.upper())
        if found is None:
            raise NotFound(f"{symbol.upper()} is not listed on the exchange's {_market_name(market_type(market))}")
        return found

    async def specs_for(self, symbols: tuple[str, ...], market: MarketType,
                        account_currency: str) -> tuple[SymbolSpec, ...]:
        """The filters of each symbol an account in ``account_currency`` may trade on ``market``;
        ``Rejected("symbols", why)`` naming the first one it may not."""
        listing = await self.listing(market)
        specs: list[SymbolSpec] = []
        for symbol in symbols:
            found = listing.get(symbol)
            if found is None:
                raise Rejected("symbols", _not_listed(symbol, market, account_currency, listing))
            if found.status != TRADING:
                raise Rejected("symbols", f"{symbol} is not trading on the exchange (status {found.status})")
            if found.quote_asset != account_currency:
                raise Rejected("symbols", (
                    f"{symbol} is quoted in {found.quote_asset}, but this account is in {account_currency}: its "
                    f"profit and loss would be booked in the wrong currency. Trade it in a {found.quote_asset} "
                    f"account (reset with account_currency {found.quote_asset})"))
            specs.append(found.spec())
        return tuple(specs)


def _market_name(market: MarketType) -> str:
    return "USDⓈ-M perpetuals" if market is MarketType.FUTURES else "spot market"


def _not_listed(symbol: str, market: MarketType, currency: str, listing: dict[str, SymbolFilters]) -> str:
    reason = f"{symbol} is not listed on the exchange's {_market_name(market)}"
    if market is MarketType.FUTURES:
        reason += f" (a futures account trades only {currency}-margined perpetuals)"
    examples = [s for s, f in listing.items() if f.quote_asset == currency][:5]
    return reason + (f"; for example: {', '.join(examples)}" if examples else "")
