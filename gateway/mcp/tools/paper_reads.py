"""Paper Trading, reads of what the session decided and how it is set up (AUTHENTICATED): its settings and
what they accept, a dry run of a settings change, its signals and decisions, its equity over time, reviews of
its closed trades and the rule-based suggestions over them.

Settings are only read and checked here: an agent changes a setting through the Tuning tools, one parameter
per proposal, so the change's GREEN/YELLOW/RED tier applies.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.mcp.registry import current, tool
from gateway.mcp.tools.paper import MAX_ID, TradeId
from gateway.paper.schemas import (
    AnalysisOut,
    BasicSettingsIn,
    DecisionOut,
    EquityPointOut,
    IndicatorSettingsIn,
    SectionOut,
    SettingInfoOut,
    SettingsCheckOut,
    SettingsIn,
    SettingsOut,
    SignalPage,
    StrategySettingsIn,
    SuggestionOut,
    SuggestionSetOut,
    Tier,
    TradeAnalysisOut,
)
from gateway.routers.paper_trading import (
    _section_out,
    _settings_out,
    check_settings,
    config_suggestions,
    decisions,
    equity_history,
    get_settings_schema,
    latest_config_suggestions,
    latest_signals,
    signals_history,
    trade_analyses,
    trade_analysis,
)


# -- settings ------------------------------------------------------------------------------------------
@tool("Paper Trading", "authenticated", title="Paper settings", read_only=True)
async def get_paper_settings() -> SettingsOut:
    """Every setting of the paper session: basic (market, leverage, balance, sizing, stops, fees, funding,
    risk limits), strategy (which strategies vote, how many must agree, Grok's part) and indicators (their
    parameters), with the settings version that counts every change. To change a setting, propose it through the
    Tuning tools, one parameter per proposal."""
    call = current()
    return _settings_out(await call.services.paper.settings_view(call.principal))


@tool("Paper Trading", "authenticated", title="One section of the paper settings", read_only=True)
async def get_paper_settings_section(
    section: Annotated[Literal["basic", "strategy", "indicators"], Field(description=(
        "basic: engine and risk; strategy: voting; indicators: indicator parameters"))],
) -> SectionOut:
    """One section of the paper session's settings, with the settings version."""
    call = current()
    return _section_out(await call.services.paper.settings_view(call.principal), section)


@tool("Paper Trading", "authenticated", title="What each paper setting accepts", read_only=True)
async def get_paper_settings_catalog() -> list[SettingInfoOut]:
    """Every setting with its path, section, label, unit, help and the values it accepts (a range for numbers,
    the choices for the others): the bounds every settings change is checked against."""
    call = current()
    return await get_settings_schema(call.principal, call.services.paper)


@tool("Paper Trading", "authenticated", title="Check a paper settings change", read_only=True)
async def check_paper_settings(
    basic: BasicSettingsIn | None = None,
    strategy: StrategySettingsIn | None = None,
    indicators: IndicatorSettingsIn | None = None,
) -> SettingsCheckOut:
    """A dry run of a settings change: whether the paper session would accept these values, by the same rules
    its update runs, with the field and reason it would refuse. Nothing is changed: to change a setting, propose it
    through the Tuning tools, one parameter per proposal."""
    call = current()
    body = SettingsIn(basic=basic, strategy=strategy, indicators=indicators)
    return await check_settings(body, call.principal, call.services.paper)


# -- signals and decisions -----------------------------------------------------------------------------
@tool("Paper Trading", "authenticated", title="Paper signal history", read_only=True)
async def get_paper_signals_history(
    limit: Annotated[int, Field(ge=1, le=500)] = 100,
    before: Annotated[int | None, Field(ge=0, le=MAX_ID, description=(
        "open time (ms), exclusive: pass the previous page's next_before"))] = None,
) -> SignalPage:
    """The consensus signals of the paper session's symbols under its current settings, newest first: direction,
    confidence, reason and each strategy's verdict per candle."""
    call = current()
    return await signals_history(call.principal, call.services.paper, limit, before)


@tool("Paper Trading", "authenticated", title="Latest paper signals", read_only=True)
async def get_paper_latest_signals() -> list[AnalysisOut]:
    """The newest analysis of each of the paper session's symbols (one per symbol)."""
    call = current()
    return await latest_signals(call.principal, call.services.paper)


@tool("Paper Trading", "authenticated", title="Paper trading decisions", read_only=True)
async def list_paper_decisions(limit: Annotated[int, Field(ge=1, le=200)] = 20) -> list[DecisionOut]:
    """What the paper session made of its recent long/short signals, newest first: the risk checks of each entry
    it attempted, why it did not trade, whether it opened a position, and Grok's part when on."""
    call = current()
    return await decisions(call.principal, call.services.paper, limit)


@tool("Paper Trading", "authenticated", title="Paper equity history", read_only=True)
async def get_paper_equity_history(
    limit: Annotated[int, Field(ge=2, le=1000, description="at most this many points, evenly spread")] = 1000,
    since: Annotated[int | None, Field(ge=0, le=MAX_ID, description="market time (ms), inclusive")] = None,
    generation: Annotated[int | None, Field(ge=0, le=MAX_ID, description="only this account")] = None,
) -> list[EquityPointOut]:
    """The paper account's equity (and cash, unrealised PnL) at each committed step, oldest first, downsampled to
    `limit` points with the first and last kept."""
    call = current()
    return await equity_history(call.principal, call.services.paper, limit, since, generation)


# -- reviews and suggestions ---------------------------------------------------------------------------
@tool("Paper Trading", "authenticated", title="Paper trade reviews", read_only=True)
async def list_paper_trade_analyses(
    limit: Annotated[int, Field(ge=1, le=500)] = 50,
    offset: Annotated[int, Field(ge=0, le=100_000)] = 0,
) -> list[TradeAnalysisOut]:
    """A rule-based review of each closed paper trade, newest exit first: outcome, return, MFE/MAE, how much of
    the best move it captured, how the strategies stood at entry and exit, and a verdict."""
    call = current()
    return await trade_analyses(call.principal, call.services.paper, limit, offset)


@tool("Paper Trading", "authenticated", title="Review of one paper trade", read_only=True)
async def get_paper_trade_analysis(trade_id: TradeId) -> TradeAnalysisOut:
    """The rule-based review of one closed paper trade (not found when it is open, unknown or not yours)."""
    call = current()
    return await trade_analysis(trade_id, call.principal, call.services.paper)


@tool("Paper Trading", "authenticated", title="Paper settings suggestions", read_only=True)
async def list_paper_config_suggestions(
    tier: Annotated[Tier | None, Field(description=(
        "only suggestions of this tuning tier (NONE: lowers risk only, applies at once)"))] = None,
) -> list[SuggestionOut]:
    """Settings changes the documented rules suggest from the current account's metrics and recent closed
    trades: parameter, current and proposed value, reason and tuning tier. Nothing is applied: propose a change
    through the Tuning tools, one parameter per proposal."""
    call = current()
    return await config_suggestions(call.principal, call.services.paper, tier)


@tool("Paper Trading", "authenticated", title="Latest paper suggestion set", read_only=True)
async def get_paper_config_suggestions() -> SuggestionSetOut:
    """The newest set of settings suggestions with what it was computed from: the account generation, market
    time, trades considered and metrics."""
    call = current()
    return await latest_config_suggestions(call.principal, call.services.paper)
