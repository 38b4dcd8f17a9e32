"""MCP resources, for clients that attach context rather than call tools: a symbol's candles (public) and the
caller's paper account summary (authenticated). Same services, same tiers as the tools."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, get_args

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from gateway.routers.market import Timeframe, get_candles
from gateway.routers.paper_trading import get_portfolio
from services.agent_grants import AgentAccess
from services.errors import DomainError
from services.principal import TIERS, Principal, Tier

if TYPE_CHECKING:
    from services.container import Services

SYMBOL = re.compile(r"^[A-Za-z0-9]{2,20}$")
CANDLES_URI = "durabot://market/candles/{symbol}/{timeframe}"
ACCOUNT_URI = "durabot://account/summary"


def register_resources(server: MCPServer, services: Services, access_of: Callable[[], AgentAccess | None]) -> None:
    def caller(tier: Tier) -> Principal:
        access = access_of()
        if access is None:
            raise ResourceError("unauthenticated: this resource needs an MCP access token")
        if TIERS.index(access.tier) < TIERS.index(tier):
            raise ResourceError(f"forbidden: this resource needs the {tier} tier; this token allows {access.tier}")
        return access.principal()

    @server.resource(CANDLES_URI, name="candles", title="Candles of a symbol", mime_type="application/json",
                     description="The newest 500 OHLCV candles of a symbol at a timeframe (1m, 5m, 15m, 1h, 4h, "
                                 "1d), market time in ms: the same as the get_market_candles tool.")
    async def candles(symbol: str, timeframe: str) -> str:
        caller("public")
        if not SYMBOL.match(symbol) or timeframe not in get_args(Timeframe):
            choices = ", ".join(get_args(Timeframe))
            raise ResourceError(f"rejected: a symbol like BTCUSDT and a timeframe among {choices}")
        try:
            found = await get_candles(services.market, symbol, timeframe, 500, None, None)  # type: ignore[arg-type]
        except DomainError as exc:
            raise ResourceError(exc.message) from None
        return found.model_dump_json()

    @server.resource(ACCOUNT_URI, name="account_summary", title="Paper account summary", mime_type="application/json",
                     description="Your paper session's status, balance, equity and open positions: the same as "
                                 "the get_portfolio tool.")
    async def account_summary() -> str:
        principal = caller("authenticated")
        try:
            found = await get_portfolio(principal, services.paper)
        except DomainError as exc:
            raise ResourceError(exc.message) from None
        return found.model_dump_json()
