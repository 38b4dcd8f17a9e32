"""``/api/paper-trading``: the caller's paper session (``session:{user}:paper``), the seed's 28 endpoints.

An adapter over ``services.paper.PaperTrading``: it maps request bodies to the use cases' input and
their results to the API's shapes. Until the first write the reads answer as a new session (status
``new``, default settings, an empty account) without creating anything. Writes take an
``Idempotency-Key`` header (required for orders, cancels, closes and reset): a repeat returns the
first result. A rejected write is a 422 ``{"detail": {"field", "reason"}}``; an unknown trade or order
ID is a 404, and so is closing a trade that is closed already. Stop and close also work while the
database is out of reach (a session confirmed live within the last minute is enough).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from core.contracts import ManualOrderInput, SessionStatus
from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses, RiskReducer
from gateway.deps import IdempotencyKey, PaperDep
from gateway.errors import RejectedOut
from gateway.paper.route import RejectingRoute
from gateway.paper.schemas import (
    AccountOut,
    AnalysisOut,
    BasicSettingsIn,
    ClosedTradeOut,
    DecisionOut,
    EquityPointOut,
    ErrorOut,
    IndicatorSettingsIn,
    ManualOrderIn,
    OrderResultOut,
    PortfolioOut,
    ResetOut,
    SectionOut,
    SettingInfoOut,
    SettingsCheckOut,
    SettingsIn,
    SettingsOut,
    SignalIntervalIn,
    SignalPage,
    StartIn,
    StatusOut,
    StrategySettingsIn,
    SuggestionOut,
    SuggestionSetOut,
    SymbolsIn,
    SymbolsOut,
    Tier,
    TradeAnalysisOut,
    TriggerOut,
)
from services.paper import SettingsPatch, SettingsView, StartRequest, SuggestionSet, SymbolsView, TradeAnalysis

router = APIRouter(prefix="/api/paper-trading", tags=["paper-trading"], route_class=RejectingRoute)

REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid input, or the session rejected it "
                                                                  "(the field and the reason)"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such trade or order of yours"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "The session could not answer"}}
CONFLICT: Responses = {409: {"model": RejectedOut, "description": "The settings changed since expected_version"}}
READ = {**AUTH_ERRORS, **UNAVAILABLE}
BAD_BODY: Responses = {400: {"model": RejectedOut, "description": (
    "The body is not valid JSON, or a write that needs an Idempotency-Key came without one")}}
WRITE = {**AUTH_ERRORS, **BAD_BODY, **REJECTED, **UNAVAILABLE}
MAX_ID = 2**53
TradeId = Annotated[int, Path(ge=1, le=MAX_ID, description="a trade ID of your session")]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="a pending order ID of your session")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=100_000)]
ExpectedVersion = Annotated[int | None, Query(ge=0, le=MAX_ID, description=(
    "the settings version this change was made against; another one is a 409"))]


def _status_out(found: SessionStatus, exists: bool) -> StatusOut:
    return StatusOut(
        session_id=found.workflow_id, status=found.status, exists=exists, source=found.source,  # type: ignore[arg-type]
        symbols=list(found.symbols), interval=found.interval, market_time=found.market_time,
        last_open_time=dict(found.last_open_time), queued=found.queued, candles_processed=found.candles_processed,
        duplicates_dropped=found.duplicates_dropped, gap_candles_filled=found.gap_candles_filled,
        candles_ignored=found.candles_ignored, candles_rejected=found.candles_rejected,
        trades_closed=found.trades_closed, entries_enabled=found.entries_enabled, equity=found.equity,
        generation=found.generation, metrics=found.metrics, lagging=list(found.lagging), degraded=found.degraded,
        pending_writes=found.pending_writes, journal_seq=found.journal_seq, settings_version=found.settings_version,
        waiting_entries=found.waiting_entries,  # type: ignore[arg-type]
    )


def _dump(model: Any) -> dict[str, Any] | None:
    return model.model_dump(exclude_none=True) if model is not None else None


def _patch(basic: BasicSettingsIn | None = None, strategy: StrategySettingsIn | None = None,
           indicators: IndicatorSettingsIn | None = None, expected_version: int | None = None) -> SettingsPatch:
    return SettingsPatch(_dump(basic), _dump(strategy), _dump(indicators), expected_version)


def _settings_out(view: SettingsView) -> SettingsOut:
    return SettingsOut(status=view.status, version=view.version, basic=view.basic, strategy=view.strategy,
                       indicators=view.indicators)


def _section_out(view: SettingsView, section: str) -> SectionOut:
    return SectionOut(status=view.status, version=view.version, settings=getattr(view, section))


def _symbols_out(view: SymbolsView) -> SymbolsOut:
    return SymbolsOut(status=view.status, source=view.source, symbols=view.symbols, interval=view.interval)


def _analysis_out(found: TradeAnalysis) -> TradeAnalysisOut:
    return TradeAnalysisOut(trade_id=found.trade_id, generation=found.generation, review=found.review.to_dict())


def _suggestions_out(made: SuggestionSet) -> SuggestionSetOut:
    return SuggestionSetOut(session_id=made.session_id, generation=made.generation, market_time=made.market_time,
                            trades_considered=made.trades_considered, metrics=made.metrics,
                            suggestions=[SuggestionOut.model_validate(s.to_dict()) for s in made.suggestions])


# -- status and account ----------------------------------------------------------------------------
@router.get("/status", response_model=StatusOut, responses=READ)
async def get_status(user: CurrentUser, paper: PaperDep) -> StatusOut:
    """The session's live status; ``exists: false`` (status ``new``) until the first write."""
    view = await paper.status(user)
    return _status_out(view.status, view.exists)


@router.get("/portfolio", response_model=PortfolioOut, responses=READ)
async def get_portfolio(user: CurrentUser, paper: PaperDep) -> PortfolioOut:
    found = await paper.portfolio(user)
    return PortfolioOut(session_id=found.session_id, status=found.status,
                        account=AccountOut.model_validate(found.account), positions=found.positions)


@router.get("/trades/open", response_model=list[dict[str, Any]], responses=READ)
async def get_open_trades(user: CurrentUser, paper: PaperDep) -> list[dict[str, Any]]:
    """Open positions (one per symbol), each with its trade ID, stop, take profit and MFE/MAE so far."""
    return await paper.open_trades(user)


@router.get("/trades/closed", response_model=list[ClosedTradeOut], responses=READ)
async def get_closed_trades(user: CurrentUser, paper: PaperDep, limit: Limit = 50, offset: Offset = 0,
                            generation: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None) -> list[ClosedTradeOut]:
    """Closed trades, newest exit first; ``generation`` picks one account (every reset starts one)."""
    rows = await paper.closed_trades(user, limit, offset, generation)
    return [ClosedTradeOut(trade_id=r["trade_id"], generation=r.get("generation", 0), symbol=r["symbol"],
                           trade=r["trade"], partial_closes=r.get("partial_closes") or []) for r in rows]


@router.post("/trades/{trade_id}/close", response_model=dict[str, Any], responses={**WRITE, **NOT_FOUND})
async def close_trade(trade_id: TradeId, user: RiskReducer, paper: PaperDep,
                      key: IdempotencyKey = None) -> dict[str, Any]:
    """Close an open trade at the freshest price; a closed or unknown trade is a 404."""
    return await paper.close_trade(user, trade_id, key)


# -- settings --------------------------------------------------------------------------------------
@router.put("/settings", response_model=SettingsOut, responses={**WRITE, **CONFLICT})
async def put_settings(body: SettingsIn, user: CurrentUser, paper: PaperDep,
                       key: IdempotencyKey = None) -> SettingsOut:
    """Change any of the basic (engine and risk), strategy and indicator settings at once; omitted
    fields keep their value."""
    patch = _patch(body.basic, body.strategy, body.indicators, body.expected_version)
    return _settings_out(await paper.update_settings(user, patch, key))


@router.get("/settings/schema", response_model=list[SettingInfoOut], responses=AUTH_ERRORS)
async def get_settings_schema(user: CurrentUser, paper: PaperDep) -> list[SettingInfoOut]:
    """Every setting with its label, unit, help and allowed values: what the settings form is built from,
    and the ranges every settings write is checked against."""
    return [SettingInfoOut(**asdict(setting)) for setting in paper.settings_catalog()]


@router.post("/settings/check", response_model=SettingsCheckOut, responses={**AUTH_ERRORS, **BAD_BODY, **REJECTED})
async def check_settings(body: SettingsIn, user: CurrentUser, paper: PaperDep) -> SettingsCheckOut:
    """A dry run of ``PUT /settings``: whether the session would accept these changes, with the field
    and reason it would give, checked against its saved settings by the same rules its update runs.
    Nothing is changed. A body that does not fit the schema is still a 422."""
    found = await paper.check_settings(user, _patch(body.basic, body.strategy, body.indicators))
    return SettingsCheckOut(valid=found.valid, field=found.field, reason=found.reason)


@router.get("/basic-settings", response_model=SectionOut, responses=AUTH_ERRORS)
async def get_basic_settings(user: CurrentUser, paper: PaperDep) -> SectionOut:
    """Engine settings: market, leverage, starting balance, sizing, stops, fees, funding and risk."""
    return _section_out(await paper.settings_view(user), "basic")


@router.put("/basic-settings", response_model=SectionOut, responses={**WRITE, **CONFLICT})
async def put_basic_settings(body: BasicSettingsIn, user: CurrentUser, paper: PaperDep,
                             expected_version: ExpectedVersion = None, key: IdempotencyKey = None) -> SectionOut:
    view = await paper.update_settings(user, _patch(basic=body, expected_version=expected_version), key)
    return _section_out(view, "basic")


@router.get("/strategy-settings", response_model=SectionOut, responses=AUTH_ERRORS)
async def get_strategy_settings(user: CurrentUser, paper: PaperDep) -> SectionOut:
    """Which strategies vote, how many must agree, and optional weights."""
    return _section_out(await paper.settings_view(user), "strategy")


@router.put("/strategy-settings", response_model=SectionOut, responses={**WRITE, **CONFLICT})
async def put_strategy_settings(body: StrategySettingsIn, user: CurrentUser, paper: PaperDep,
                                expected_version: ExpectedVersion = None, key: IdempotencyKey = None) -> SectionOut:
    view = await paper.update_settings(user, _patch(strategy=body, expected_version=expected_version), key)
    return _section_out(view, "strategy")


@router.get("/indicator-settings", response_model=SectionOut, responses=AUTH_ERRORS)
async def get_indicator_settings(user: CurrentUser, paper: PaperDep) -> SectionOut:
    """Each strategy's indicator parameters (RSI, MACD, Bollinger Bands, volume, stochastic, ATR)."""
    return _section_out(await paper.settings_view(user), "indicators")


@router.put("/indicator-settings", response_model=SectionOut, responses={**WRITE, **CONFLICT})
async def put_indicator_settings(body: IndicatorSettingsIn, user: CurrentUser, paper: PaperDep,
                                 expected_version: ExpectedVersion = None, key: IdempotencyKey = None) -> SectionOut:
    view = await paper.update_settings(user, _patch(indicators=body, expected_version=expected_version), key)
    return _section_out(view, "indicators")


# -- lifecycle ---------------------------------------------------------------------------------------
@router.get("/symbols", response_model=SymbolsOut, responses=READ)
async def get_symbols(user: CurrentUser, paper: PaperDep) -> SymbolsOut:
    return _symbols_out(await paper.symbols(user))


@router.put("/symbols", response_model=SymbolsOut, responses=WRITE)
async def put_symbols(body: SymbolsIn, user: CurrentUser, paper: PaperDep, key: IdempotencyKey = None) -> SymbolsOut:
    """Follow these symbols from now on (the session must have been started)."""
    return _symbols_out(await paper.update_symbols(user, body.symbols, key))


@router.post("/start", response_model=StatusOut, responses=WRITE)
async def start(user: CurrentUser, paper: PaperDep, body: StartIn | None = None,
                key: IdempotencyKey = None) -> StatusOut:
    """Start trading on the gateway's feed. Symbols and interval default to the session's, else to the
    first stream the feed always follows (``DURABOT_FEED_STREAMS``); settings given here change
    before the start."""
    body = body or StartIn()
    request = StartRequest(tuple(body.symbols) if body.symbols else None, body.interval,
                           _patch(body.basic, body.strategy, body.indicators))
    return _status_out(await paper.start(user, request, key), exists=True)


@router.post("/stop", response_model=StatusOut, responses=WRITE)
async def stop(user: RiskReducer, paper: PaperDep, key: IdempotencyKey = None) -> StatusOut:
    """Block new entries; open positions and resting orders keep being managed."""
    return _status_out(await paper.stop(user, key), exists=True)


@router.put("/signal-interval", response_model=StatusOut, responses=WRITE)
async def put_signal_interval(body: SignalIntervalIn, user: CurrentUser, paper: PaperDep,
                              key: IdempotencyKey = None) -> StatusOut:
    """Trade on this timeframe from now on (the session must have been started)."""
    return _status_out(await paper.set_signal_interval(user, body.interval, key), exists=True)


@router.post("/reset", response_model=ResetOut, responses=WRITE)
async def reset(user: CurrentUser, paper: PaperDep, key: IdempotencyKey = None) -> ResetOut:
    """A fresh account at the starting balance: pending orders cancelled, open positions closed at
    the latest price, the feed left; settings stay."""
    done = await paper.reset(user, key)
    return ResetOut(cancelled_orders=list(done.cancelled_orders), closed_trades=list(done.closed_trades),
                    status=_status_out(done.status, exists=True))


# -- orders --------------------------------------------------------------------------------------------
@router.post("/orders", response_model=OrderResultOut, responses=WRITE)
async def place_order(body: ManualOrderIn, user: CurrentUser, paper: PaperDep,
                      key: IdempotencyKey = None) -> OrderResultOut:
    """A manual order: ``market`` fills at the freshest price ± slippage; ``limit`` and ``stop_limit``
    rest until a candle fills them."""
    result = await paper.place_order(user, ManualOrderInput(**body.model_dump()), key)
    return OrderResultOut(order=result.order, fills=list(result.fills), trades=list(result.trades))


@router.get("/pending-orders", response_model=list[dict[str, Any]], responses=READ)
async def get_pending_orders(user: CurrentUser, paper: PaperDep) -> list[dict[str, Any]]:
    return await paper.pending_orders(user)


@router.delete("/pending-orders/{order_id}", response_model=dict[str, Any], responses={**WRITE, **NOT_FOUND})
async def cancel_order(order_id: OrderId, user: CurrentUser, paper: PaperDep,
                       key: IdempotencyKey = None) -> dict[str, Any]:
    """Cancel a resting order (its reserved margin is released); an unknown one is a 404."""
    return await paper.cancel_order(user, order_id, key)


# -- analysis and signals ---------------------------------------------------------------------------------
@router.post("/trigger-analysis", response_model=TriggerOut, responses=WRITE)
async def trigger_analysis(user: CurrentUser, paper: PaperDep, key: IdempotencyKey = None) -> TriggerOut:
    """Run the technical analysis of each stream's last processed candle now; it never trades."""
    return TriggerOut(analyses=[AnalysisOut.model_validate(d) for d in await paper.trigger_analysis(user, key)])


@router.get("/signals-history", response_model=SignalPage, responses=READ)
async def signals_history(user: CurrentUser, paper: PaperDep, limit: Limit = 100,
                          before: Annotated[int | None, Query(ge=0, le=MAX_ID,
                                                              description="open time (ms), exclusive")] = None,
                          ) -> SignalPage:
    """The consensus signals of the session's streams under its current settings, newest first."""
    items = [AnalysisOut.model_validate(d) for d in await paper.signals_history(user, limit, before)]
    return SignalPage(items=items, next_before=items[-1].open_time if len(items) == limit else None)


@router.get("/latest-signals", response_model=list[AnalysisOut], responses=READ)
async def latest_signals(user: CurrentUser, paper: PaperDep) -> list[AnalysisOut]:
    """The newest analysis of each of the session's symbols."""
    return [AnalysisOut.model_validate(d) for d in await paper.latest_signals(user)]


@router.get("/decisions", response_model=list[DecisionOut], responses=READ)
async def decisions(user: CurrentUser, paper: PaperDep,
                    limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[DecisionOut]:
    """What the session made of its recent long/short signals, newest first: the risk checks of each
    attempted entry, why it did not trade, whether it opened (the ``AISignalReceived`` events)."""
    return [DecisionOut.model_validate(r) for r in await paper.decisions(user, limit)]


@router.get("/equity-history", response_model=list[EquityPointOut], responses=READ)
async def equity_history(user: CurrentUser, paper: PaperDep, limit: Annotated[int, Query(ge=2, le=1000)] = 1000,
                         from_: Annotated[int | None, Query(alias="from", ge=0, le=MAX_ID,
                                                            description="market time (ms), inclusive")] = None,
                         generation: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None) -> list[EquityPointOut]:
    """The account's equity at each committed step, oldest first, evenly downsampled to ``limit`` points
    (the first and last kept); ``generation`` picks one account (every reset starts one)."""
    rows = await paper.equity_history(user, limit, from_, generation)
    return [EquityPointOut.model_validate(r) for r in rows]


@router.get("/trade-analyses", response_model=list[TradeAnalysisOut], responses=READ)
async def trade_analyses(user: CurrentUser, paper: PaperDep, limit: Limit = 50,
                         offset: Offset = 0) -> list[TradeAnalysisOut]:
    """A rule-based review of each closed trade, newest exit first (trading.trade_review)."""
    return [_analysis_out(a) for a in await paper.trade_analyses(user, limit, offset)]


@router.get("/trade-analyses/{trade_id}", response_model=TradeAnalysisOut, responses={**READ, **NOT_FOUND})
async def trade_analysis(trade_id: TradeId, user: CurrentUser, paper: PaperDep) -> TradeAnalysisOut:
    return _analysis_out(await paper.trade_analysis(user, trade_id))


@router.get("/config-suggestions", response_model=list[SuggestionOut], responses=READ)
async def config_suggestions(user: CurrentUser, paper: PaperDep, tier: Tier | None = None) -> list[SuggestionOut]:
    """Suggestions of the documented rules (trading.config_rules) over the current account's
    metrics and last closed trades; ``tier`` filters by tuning tier."""
    made = _suggestions_out(await paper.config_suggestions(user))
    return [s for s in made.suggestions if tier is None or s.tier == tier]


@router.get("/config-suggestions/latest", response_model=SuggestionSetOut, responses=READ)
async def latest_config_suggestions(user: CurrentUser, paper: PaperDep) -> SuggestionSetOut:
    """The newest set of suggestions, with what it was computed from (computed on read)."""
    return _suggestions_out(await paper.config_suggestions(user))

