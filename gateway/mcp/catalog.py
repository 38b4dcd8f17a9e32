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
_HUMAN = "confirming and approving are a person's, never an agent's"
_STEP_UP = "it needs a two-factor code from a person in a login session (an agent has none)"


def _tiered(name: str, category: Category, route: str) -> NotServed:
    return NotServed(name, category, "agents change settings through the tuning tiers, one parameter per proposal "
                                     "(apply_green_adjustment, request_yellow_adjustment, request_red_adjustment)",
                     f"the dashboard's settings, or {route}")

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
    "Paper Trading": {
        "get_paper_status": "get_paper_status",
        "get_portfolio": "get_paper_portfolio",
        "get_open_trades": "list_paper_open_trades",
        "get_closed_trades": "list_paper_closed_trades",
        "close_trade": "close_paper_trade",
        "get_basic_settings": "get_paper_settings_section",
        "get_strategy_settings": "get_paper_settings_section",
        "get_indicator_settings": "get_paper_settings_section",
        "update_settings": _tiered("update_settings", "Paper Trading", "PUT /api/paper-trading/settings"),
        "update_basic_settings": _tiered("update_basic_settings", "Paper Trading",
                                         "PUT /api/paper-trading/basic-settings"),
        "update_strategy_settings": _tiered("update_strategy_settings", "Paper Trading",
                                            "PUT /api/paper-trading/strategy-settings"),
        "update_indicator_settings": _tiered("update_indicator_settings", "Paper Trading",
                                             "PUT /api/paper-trading/indicator-settings"),
        "get_symbols": "get_paper_symbols",
        "update_symbols": "set_paper_symbols",
        "start_paper_trading": "start_paper_trading",
        "stop_paper_trading": "stop_paper_trading",
        "place_paper_order": "place_paper_order",
        "get_pending_orders": "list_paper_pending_orders",
        "cancel_pending_order": "cancel_paper_order",
        "trigger_analysis": "trigger_paper_analysis",
        "update_signal_interval": "set_paper_signal_interval",
        "get_signals_history": "get_paper_signals_history",
        "get_latest_signals": "get_paper_latest_signals",
        "get_trade_analyses": "list_paper_trade_analyses",
        "get_trade_analysis": "get_paper_trade_analysis",
        "get_config_suggestions": "list_paper_config_suggestions",
        "get_latest_config_suggestions": "get_paper_config_suggestions",
        "reset_paper_account": "reset_paper_account",
    },
    "Real Trading": {
        "get_real_status": "get_real_status",
        "get_positions": "get_real_positions",
        "get_balance": "get_real_balance",
        "get_open_orders": "get_real_open_orders",
        "get_order_history": "list_real_orders",
        "get_order": "get_real_order",
        "get_trade_history": "get_real_closed_trades",
        "place_order": "place_real_order",
        "confirm_order": NotServed("confirm_order", "Real Trading", _HUMAN,
                                   "the owner confirms in the dashboard (Real trading) or Telegram"),
        "cancel_order": "cancel_real_order",
        "close_position": "close_real_position",
        "start_real_trading": "request_real_trading_start",
        "stop_real_trading": "stop_real_session",
        "update_real_settings": _tiered("update_real_settings", "Real Trading", "PUT /api/real-trading/settings"),
    },
    "Tuning": {name: name for name in (
        "get_tuning_dashboard", "get_parameter_bounds", "apply_green_adjustment", "request_yellow_adjustment",
        "request_red_adjustment", "get_audit_history", "take_snapshot", "restore_from_snapshot")},
    "Monitoring": {
        "get_system_metrics": "get_system_metrics",
        "get_alerts": "get_alerts",
        "get_risk_metrics": "get_risk_metrics",
        "get_performance_metrics": "get_performance_metrics",
        "get_audit_logs": "list_security_events",
    },
    "Settings": {
        "get_api_keys": "list_api_keys",
        "add_api_key": NotServed("add_api_key", "Settings", _SECRET, "dashboard Settings → API keys"),
        "delete_api_key": NotServed("delete_api_key", "Settings", _STEP_UP, "dashboard Settings → API keys"),
        "test_api_key": NotServed("test_api_key", "Settings", _STEP_UP,
                                  "dashboard Settings → API keys; get_real_balance shows whether the key works"),
        "get_notification_settings": "get_notification_settings",
        "update_notification_settings": "update_notification_settings",
        "get_two_factor_status": "get_two_factor_status",
        "setup_two_factor": NotServed("setup_two_factor", "Settings", _SECRET,
                                      "dashboard Settings → Two-factor authentication"),
        "disable_two_factor": NotServed("disable_two_factor", "Settings", _SECRET,
                                        "dashboard Settings → Two-factor authentication"),
        "export_settings": "export_settings_document",
    },
    "AI": {
        "predict_price": "predict_price",
        "analyze_market": "analyze_market",
        "chat_with_ai": "chat_with_ai",
        "get_ai_signals": "get_ai_signals",
        "get_ai_usage": "get_ai_usage",
        "review_trade": "review_trade_with_ai",
        "get_trade_reviews": "list_ai_trade_reviews",
        "train_model": "train_price_model",
        "get_training_jobs": "list_training_jobs",
        "get_training_status": "get_training_job",
        "cancel_training": "cancel_training_job",
        "configure_ai_provider": NotServed("configure_ai_provider", "AI", _SECRET,
                                           "the operator sets DURABOT_XAI_API_KEY and the AI budgets (README)"),
    },
    "Tasks": {
        "create_task": "create_task",
        "list_tasks": "list_tasks",
        "get_task_status": "get_task_status",
        "get_task_result": "get_task_result",
        "cancel_task": "cancel_task",
        "retry_task": NotServed("retry_task", "Tasks", "a finished task stays as it ended; create_task with a new "
                                "idempotency key runs it again, so no retry hides an outcome",
                                "create_task (an agent) or the dashboard's Backtests and AI pages"),
        "delete_task": NotServed("delete_task", "Tasks", "records stay for their owner and the audit; deleting is "
                                 "the owner's", "the dashboard's Backtests page (DELETE /api/backtests/{id})"),
    },
    "Backtests": {
        "run_backtest": "run_backtest",
        "get_results": "get_backtest_results",
        "list_backtests": "list_backtests",
    },
    "Auth": {
        "login": NotServed("login", "Auth", _SECRET, "log in on the dashboard or POST /api/auth/login"),
        "register": NotServed("register", "Auth", _SECRET, "register on the dashboard or POST /api/auth/register"),
        "refresh_token": NotServed("refresh_token", "Auth", _SECRET,
                                   "the dashboard refreshes its own session; agents get a grant with an expiry"),
        "get_current_user": "get_profile",
    },
}


def seed_tools() -> dict[str, str | NotServed]:
    return {name: fate for names in SEED.values() for name, fate in names.items()}


SEED_TOOLS = seed_tools()
NOT_SERVED: tuple[NotServed, ...] = tuple(f for f in SEED_TOOLS.values() if isinstance(f, NotServed))
