"""The seed's MCP tools (103 in 11 categories, seeds/ARCHITECTURE.md) and what became of each: served (under
its name or ours), or not served with the reason and the human path instead.

The seed's architecture names some tools (``get_market_prices``, ``get_candles``, ``add_symbol``, the eight
tuning tools, …) and the count per category; the rest are its REST endpoints' use cases, which its MCP
server bridged one to one. A test holds this list to the registry: every name served is served, and the
count per category is the seed's.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.mcp.registry import Category


@dataclass(frozen=True)
class NotServed:
    name: str
    category: Category
    reason: str
    human_path: str


SEED_COUNTS: dict[Category, int] = {
    "Health": 4, "Market": 8, "Paper Trading": 28, "Real Trading": 14, "AI": 12, "Tasks": 7, "Monitoring": 5,
    "Settings": 10, "Auth": 4, "Tuning": 8, "Backtests": 3,
}

_SECRET = "a password, code, token or exchange secret would pass through a language model"

# Seed tool → the tool we serve for it (same name unless noted), or why it is not served.
SEED: dict[Category, dict[str, str | NotServed]] = {
    "Health": {
        "check_rust_health": "get_health",  # the seed's Rust engine is our worker fleet on Temporal
        "check_docker_status": "get_system_info",
        "get_access_info": "get_access_info",
        "ping": "ping",
    },
    "Market": {
        "get_market_prices": "get_market_prices",
        "get_latest_price": "get_price",
        "get_market_overview": "get_market_overview",
        "get_candles": "get_market_candles",
        "get_chart_data": "get_chart_data",
        "get_symbols": "list_exchange_symbols",
        "get_symbol_info": "get_symbol_filters",
        "add_symbol": "add_symbol",
    },
    "Auth": {
        "login": NotServed("login", "Auth", _SECRET, "log in on the dashboard or POST /api/auth/login"),
        "register": NotServed("register", "Auth", _SECRET, "register on the dashboard or POST /api/auth/register"),
        "refresh_token": NotServed("refresh_token", "Auth", _SECRET,
                                   "the dashboard refreshes its own session; agents get a grant with an expiry"),
    },
}


def seed_tools() -> dict[str, str | NotServed]:
    return {name: fate for names in SEED.values() for name, fate in names.items()}


SEED_TOOLS = seed_tools()
NOT_SERVED: tuple[NotServed, ...] = tuple(f for f in SEED_TOOLS.values() if isinstance(f, NotServed))
