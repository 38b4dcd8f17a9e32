"""``/api/paper-trading``: the caller's paper session (``session:{user}:paper``), the seed's 28 endpoints.

Writes are the session workflow's updates, sent with update-with-start: the first write creates the
session. Until then the reads answer as a new session (status ``new``, default settings, an empty
account) without creating anything. Live detail (status, portfolio, open trades, pending orders)
comes from the workflow's queries; records (closed trades, settings, signals, reviews) are MongoDB
reads, every one scoped by the caller's session ID, so another user's trade or order is a 404.

A rejected update is a 422 ``{"detail": {"field", "reason"}}``; an unknown trade or order ID is a
404, and so is closing a trade that is closed already (it is no open trade of the caller's).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import DbDep, SettingsDep, TemporalDep
from gateway.paper import reads
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
    RejectedOut,
    ResetOut,
    SectionOut,
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
from gateway.paper.session import PaperSession, field_of, new_portfolio
from trading.analysis_settings import AnalysisSettings
from trading.config_rules import RECENT_TRADES, suggest
from trading.settings import EngineSettings
from trading.trade_review import review_trade
from workflows.contracts import (
    CancelOrderInput,
    CloseTradeInput,
    ManualOrderInput,
    SessionStatus,
    SignalIntervalInput,
    StartSessionInput,
    UpdateSettingsInput,
    UpdateSymbolsInput,
)
from workflows.session_rules import checked_settings
from workflows.trading_session import TradingSessionWorkflow

router = APIRouter(prefix="/api/paper-trading", tags=["paper-trading"], route_class=RejectingRoute)

REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid input, or the session rejected it "
                                                                  "(the field and the reason)"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such trade or order of yours"}}
UNAVAILABLE: Responses = {503: {"model": ErrorOut, "description": "The session could not answer"}}
READ = {**AUTH_ERRORS, **UNAVAILABLE}
BAD_BODY: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"}}
WRITE = {**AUTH_ERRORS, **BAD_BODY, **REJECTED, **UNAVAILABLE}
MAX_ID = 2**53
NOTHING_TO_CHANGE = "nothing to change: give basic, strategy and/or indicators"
TradeId = Annotated[int, Path(ge=1, le=MAX_ID, description="a trade ID of your session")]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="a pending order ID of your session")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=100_000)]


def _session(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> PaperSession:
    return PaperSession(temporal, settings, user.user_id)


def _status_out(found: SessionStatus, exists: bool) -> StatusOut:
    return StatusOut(
        session_id=found.workflow_id, status=found.status, exists=exists, source=found.source,  # type: ignore[arg-type]
        symbols=list(found.symbols), interval=found.interval, market_time=found.market_time,
        last_open_time=dict(found.last_open_time), queued=found.queued, candles_processed=found.candles_processed,
        duplicates_dropped=found.duplicates_dropped, gap_candles_filled=found.gap_candles_filled,
        candles_ignored=found.candles_ignored, candles_rejected=found.candles_rejected,
        trades_closed=found.trades_closed, entries_enabled=found.entries_enabled, equity=found.equity,
        generation=found.generation, metrics=found.metrics, lagging=list(found.lagging),
    )


async def _status(session: PaperSession) -> StatusOut:
    found = await session.query(TradingSessionWorkflow.status)
    if found is None:
        return _status_out(await session.status(), exists=False)
    return _status_out(found, exists=True)


def _dump(model: Any) -> dict[str, Any] | None:
    return model.model_dump(exclude_none=True) if model is not None else None


def _engine_changes(basic: BasicSettingsIn | None) -> dict[str, Any] | None:
    return _dump(basic) or None


def _settings_input(record: dict[str, Any], basic: BasicSettingsIn | None, strategy: StrategySettingsIn | None,
                    indicators: IndicatorSettingsIn | None) -> UpdateSettingsInput:
    """The session update for these sections, given its saved settings ``record``."""
    analysis = reads.analysis_changes(record["analysis_settings"], _dump(strategy), _dump(indicators))
    return UpdateSettingsInput(engine_settings=_engine_changes(basic), analysis_settings=analysis)


async def _update_settings(session: PaperSession, db: DbDep, basic: BasicSettingsIn | None,
                           strategy: StrategySettingsIn | None, indicators: IndicatorSettingsIn | None) -> None:
    record = await reads.settings_record(db, session.workflow_id)
    await session.update(TradingSessionWorkflow.update_settings, _settings_input(record, basic, strategy, indicators))


# -- status and account ----------------------------------------------------------------------------
@router.get("/status", response_model=StatusOut, responses=READ)
async def get_status(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> StatusOut:
    """The session's live status; ``exists: false`` (status ``new``) until the first write."""
    return await _status(_session(user, temporal, settings))


@router.get("/portfolio", response_model=PortfolioOut, responses=READ)
async def get_portfolio(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> PortfolioOut:
    session = _session(user, temporal, settings)
    account = await session.query(TradingSessionWorkflow.portfolio)
    positions = await session.query(TradingSessionWorkflow.open_trades) if account is not None else []
    found = await session.status()
    return PortfolioOut(session_id=session.workflow_id, status=found.status,
                        account=AccountOut.model_validate(account or new_portfolio()), positions=positions or [])


@router.get("/trades/open", response_model=list[dict[str, Any]], responses=READ)
async def get_open_trades(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> list[dict[str, Any]]:
    """Open positions (one per symbol), each with its trade ID, stop, take profit and MFE/MAE so far."""
    return await _session(user, temporal, settings).query(TradingSessionWorkflow.open_trades) or []


@router.get("/trades/closed", response_model=list[ClosedTradeOut], responses=READ)
async def get_closed_trades(user: CurrentUser, db: DbDep, limit: Limit = 50, offset: Offset = 0,
                            generation: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None) -> list[ClosedTradeOut]:
    """Closed trades, newest exit first; ``generation`` picks one account (every reset starts one)."""
    rows = await reads.closed_trades(db, PaperSession.id_of(user.user_id), limit, offset, generation)
    return [ClosedTradeOut(trade_id=r["trade_id"], generation=r.get("generation", 0), symbol=r["symbol"],
                           trade=r["trade"], partial_closes=r.get("partial_closes") or []) for r in rows]


@router.post("/trades/{trade_id}/close", response_model=dict[str, Any],
             responses={**WRITE, **NOT_FOUND})
async def close_trade(trade_id: TradeId, user: CurrentUser, temporal: TemporalDep,
                      settings: SettingsDep) -> dict[str, Any]:
    """Close an open trade at the feed's latest price; a closed or unknown trade is a 404."""
    session = _session(user, temporal, settings)
    if await session.query(TradingSessionWorkflow.status) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no open trade {trade_id}")
    result: dict[str, Any] = await session.update(TradingSessionWorkflow.close_trade, CloseTradeInput(trade_id))
    return result


# -- settings --------------------------------------------------------------------------------------
@router.put("/settings", response_model=SettingsOut, responses=WRITE)
async def put_settings(body: SettingsIn, user: CurrentUser, temporal: TemporalDep, settings: SettingsDep,
                       db: DbDep) -> SettingsOut:
    """Change any of the basic (engine and risk), strategy and indicator settings at once."""
    if body.basic is None and body.strategy is None and body.indicators is None:
        raise HTTPException(422, detail={"field": None, "reason": NOTHING_TO_CHANGE})
    session = _session(user, temporal, settings)
    await _update_settings(session, db, body.basic, body.strategy, body.indicators)
    return await _all_settings(db, session.workflow_id)


@router.post("/settings/check", response_model=SettingsCheckOut, responses={**AUTH_ERRORS, **BAD_BODY, **REJECTED})
async def check_settings(body: SettingsIn, user: CurrentUser, db: DbDep) -> SettingsCheckOut:
    """A dry run of ``PUT /settings``: whether the session would accept these changes, with the field
    and reason it would give, checked against its saved settings by the same rules its update runs.
    Nothing is changed. A body that does not fit the schema is still a 422."""
    if body.basic is None and body.strategy is None and body.indicators is None:
        return SettingsCheckOut(valid=False, reason=NOTHING_TO_CHANGE)
    record = await reads.settings_record(db, PaperSession.id_of(user.user_id))
    request = _settings_input(record, body.basic, body.strategy, body.indicators)
    try:
        checked_settings(EngineSettings.from_dict(record["engine_settings"]),
                         AnalysisSettings.from_dict(record["analysis_settings"]),
                         request.engine_settings, request.analysis_settings)
    except (ValueError, TypeError) as exc:
        reason = str(exc)
        return SettingsCheckOut(valid=False, field=field_of(reason), reason=reason)
    return SettingsCheckOut(valid=True)


async def _all_settings(db: DbDep, session_id: str) -> SettingsOut:
    record = await reads.settings_record(db, session_id)
    return SettingsOut(status=record["status"], version=record.get("version"), basic=record["engine_settings"],
                       strategy=reads.strategy_part(record["analysis_settings"]),
                       indicators=reads.indicator_part(record["analysis_settings"]))


async def _section(db: DbDep, session_id: str, section: str) -> SectionOut:
    everything = await _all_settings(db, session_id)
    return SectionOut(status=everything.status, version=everything.version, settings=getattr(everything, section))


@router.get("/basic-settings", response_model=SectionOut, responses=AUTH_ERRORS)
async def get_basic_settings(user: CurrentUser, db: DbDep) -> SectionOut:
    """Engine settings: market, leverage, starting balance, sizing, stops, fees, funding and risk."""
    return await _section(db, PaperSession.id_of(user.user_id), "basic")


@router.put("/basic-settings", response_model=SectionOut, responses=WRITE)
async def put_basic_settings(body: BasicSettingsIn, user: CurrentUser, temporal: TemporalDep,
                             settings: SettingsDep, db: DbDep) -> SectionOut:
    session = _session(user, temporal, settings)
    await _update_settings(session, db, body, None, None)
    return await _section(db, session.workflow_id, "basic")


@router.get("/strategy-settings", response_model=SectionOut, responses=AUTH_ERRORS)
async def get_strategy_settings(user: CurrentUser, db: DbDep) -> SectionOut:
    """Which strategies vote, how many must agree, and optional weights."""
    return await _section(db, PaperSession.id_of(user.user_id), "strategy")


@router.put("/strategy-settings", response_model=SectionOut, responses=WRITE)
async def put_strategy_settings(body: StrategySettingsIn, user: CurrentUser, temporal: TemporalDep,
                                settings: SettingsDep, db: DbDep) -> SectionOut:
    session = _session(user, temporal, settings)
    await _update_settings(session, db, None, body, None)
    return await _section(db, session.workflow_id, "strategy")


@router.get("/indicator-settings", response_model=SectionOut, responses=AUTH_ERRORS)
async def get_indicator_settings(user: CurrentUser, db: DbDep) -> SectionOut:
    """Each strategy's indicator parameters (RSI, MACD, Bollinger Bands, volume, stochastic, ATR)."""
    return await _section(db, PaperSession.id_of(user.user_id), "indicators")


@router.put("/indicator-settings", response_model=SectionOut, responses=WRITE)
async def put_indicator_settings(body: IndicatorSettingsIn, user: CurrentUser, temporal: TemporalDep,
                                 settings: SettingsDep, db: DbDep) -> SectionOut:
    session = _session(user, temporal, settings)
    await _update_settings(session, db, None, None, body)
    return await _section(db, session.workflow_id, "indicators")


# -- lifecycle ---------------------------------------------------------------------------------------
@router.get("/symbols", response_model=SymbolsOut, responses=READ)
async def get_symbols(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> SymbolsOut:
    found = await _session(user, temporal, settings).status()
    return SymbolsOut(status=found.status, source=found.source, symbols=list(found.symbols), interval=found.interval)


@router.put("/symbols", response_model=SymbolsOut, responses=WRITE)
async def put_symbols(body: SymbolsIn, user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> SymbolsOut:
    """Follow these symbols from now on (the session must have been started)."""
    found: SessionStatus = await _session(user, temporal, settings).update(
        TradingSessionWorkflow.update_symbols, UpdateSymbolsInput(tuple(body.symbols)))
    return SymbolsOut(status=found.status, source=found.source, symbols=list(found.symbols), interval=found.interval)


@router.post("/start", response_model=StatusOut, responses=WRITE)
async def start(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep, db: DbDep,
                body: StartIn | None = None) -> StatusOut:
    """Start trading on the gateway's feed. Symbols and interval default to the first stream the
    feed always follows (``DURABOT_FEED_STREAMS``); settings given here change before the start."""
    body = body or StartIn()
    default_symbol, default_interval = (settings.feed_stream_list or (("BTCUSDT", "5m"),))[0]
    session = _session(user, temporal, settings)
    current = await reads.settings_record(db, session.workflow_id)
    request = StartSessionInput(
        source=settings.market_source, symbols=tuple(body.symbols or (default_symbol,)),
        interval=body.interval or current.get("interval") or default_interval,
        engine_settings=_engine_changes(body.basic),
        analysis_settings=reads.analysis_changes(current["analysis_settings"], _dump(body.strategy),
                                                 _dump(body.indicators)),
    )
    return _status_out(await session.update(TradingSessionWorkflow.start, request), exists=True)


@router.post("/stop", response_model=StatusOut, responses=WRITE)
async def stop(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> StatusOut:
    """Block new entries; open positions and resting orders keep being managed."""
    return _status_out(await _session(user, temporal, settings).update(TradingSessionWorkflow.stop), exists=True)


@router.put("/signal-interval", response_model=StatusOut, responses=WRITE)
async def put_signal_interval(body: SignalIntervalIn, user: CurrentUser, temporal: TemporalDep,
                              settings: SettingsDep) -> StatusOut:
    """Trade on this timeframe from now on (the session must have been started)."""
    found = await _session(user, temporal, settings).update(TradingSessionWorkflow.set_signal_interval,
                                                            SignalIntervalInput(body.interval))
    return _status_out(found, exists=True)


@router.post("/reset", response_model=ResetOut, responses=WRITE)
async def reset(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep) -> ResetOut:
    """A fresh account at the starting balance: pending orders cancelled, open positions closed at
    the latest price, the feed left; settings stay."""
    done = await _session(user, temporal, settings).update(TradingSessionWorkflow.reset)
    return ResetOut(cancelled_orders=list(done.cancelled_orders), closed_trades=list(done.closed_trades),
                    status=_status_out(done.status, exists=True))


# -- orders --------------------------------------------------------------------------------------------
@router.post("/orders", response_model=OrderResultOut, responses=WRITE)
async def place_order(body: ManualOrderIn, user: CurrentUser, temporal: TemporalDep,
                      settings: SettingsDep) -> OrderResultOut:
    """A manual order: ``market`` fills at the feed's latest price ± slippage; ``limit`` and
    ``stop_limit`` rest until a candle fills them."""
    order = ManualOrderInput(symbol=body.symbol, side=body.side, order_type=body.order_type, quantity=body.quantity,
                             limit_price=body.limit_price, stop_price=body.stop_price, reduce_only=body.reduce_only,
                             stop_loss=body.stop_loss, take_profit=body.take_profit)
    result = await _session(user, temporal, settings).update(TradingSessionWorkflow.place_order, order)
    return OrderResultOut(order=result.order, fills=list(result.fills), trades=list(result.trades))


@router.get("/pending-orders", response_model=list[dict[str, Any]], responses=READ)
async def get_pending_orders(user: CurrentUser, temporal: TemporalDep,
                             settings: SettingsDep) -> list[dict[str, Any]]:
    return await _session(user, temporal, settings).query(TradingSessionWorkflow.pending_orders) or []


@router.delete("/pending-orders/{order_id}", response_model=dict[str, Any], responses={**WRITE, **NOT_FOUND})
async def cancel_order(order_id: OrderId, user: CurrentUser, temporal: TemporalDep,
                       settings: SettingsDep) -> dict[str, Any]:
    """Cancel a resting order (its reserved margin is released); an unknown one is a 404."""
    session = _session(user, temporal, settings)
    if await session.query(TradingSessionWorkflow.status) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no pending order {order_id}")
    result: dict[str, Any] = await session.update(TradingSessionWorkflow.cancel_order, CancelOrderInput(order_id))
    return result


# -- analysis and signals ---------------------------------------------------------------------------------
@router.post("/trigger-analysis", response_model=TriggerOut, responses=WRITE)
async def trigger_analysis(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep, db: DbDep) -> TriggerOut:
    """Run the technical analysis of each stream's last processed candle now; it never trades."""
    session = _session(user, temporal, settings)
    if await session.query(TradingSessionWorkflow.status) is None:
        raise HTTPException(422, detail={"field": None, "reason": "no candle processed yet: nothing to analyse"})
    results = await session.update(TradingSessionWorkflow.analyze_now)
    keys = [r.analysis_key for r in results.values()]
    docs = {d["analysis_key"]: d async for d in db.ai_analysis_results.find(
        {"analysis_key": {"$in": keys}}, reads.ANALYSIS_FIELDS)}
    return TriggerOut(analyses=[AnalysisOut.model_validate(docs[k]) for k in keys if k in docs])


@router.get("/signals-history", response_model=SignalPage, responses=READ)
async def signals_history(user: CurrentUser, db: DbDep, limit: Limit = 100,
                          before: Annotated[int | None, Query(ge=0, le=MAX_ID,
                                                              description="open time (ms), exclusive")] = None,
                          ) -> SignalPage:
    """The consensus signals of the session's streams under its current settings, newest first."""
    record = await reads.settings_record(db, PaperSession.id_of(user.user_id))
    docs = await reads.analyses(db, record["symbols"], record["interval"], record["analysis_settings_hash"],
                                limit, before)
    items = [AnalysisOut.model_validate(d) for d in docs]
    return SignalPage(items=items, next_before=items[-1].open_time if len(items) == limit else None)


@router.get("/latest-signals", response_model=list[AnalysisOut], responses=READ)
async def latest_signals(user: CurrentUser, db: DbDep) -> list[AnalysisOut]:
    """The newest analysis of each of the session's symbols."""
    record = await reads.settings_record(db, PaperSession.id_of(user.user_id))
    docs = await reads.latest_analyses(db, record["symbols"], record["interval"], record["analysis_settings_hash"])
    return [AnalysisOut.model_validate(d) for d in docs]


@router.get("/decisions", response_model=list[DecisionOut], responses=READ)
async def decisions(user: CurrentUser, db: DbDep, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[DecisionOut]:
    """What the session made of its recent long/short signals, newest first: the risk checks of each
    attempted entry, why it did not trade, whether it opened (the ``AISignalReceived`` events)."""
    rows = await reads.decisions(db, user.user_id, limit)
    return [DecisionOut.model_validate(r) for r in rows]


@router.get("/equity-history", response_model=list[EquityPointOut], responses=READ)
async def equity_history(user: CurrentUser, db: DbDep, limit: Annotated[int, Query(ge=2, le=1000)] = 1000,
                         from_: Annotated[int | None, Query(alias="from", ge=0, le=MAX_ID,
                                                            description="market time (ms), inclusive")] = None,
                         generation: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None) -> list[EquityPointOut]:
    """The account's equity at each committed step, oldest first, evenly downsampled to ``limit`` points
    (the first and last kept); ``generation`` picks one account (every reset starts one)."""
    rows = await reads.equity_history(db, PaperSession.id_of(user.user_id), limit, from_, generation)
    return [EquityPointOut.model_validate(r) for r in rows]


def _analysis_out(row: dict[str, Any]) -> TradeAnalysisOut:
    return TradeAnalysisOut(trade_id=row["trade_id"], generation=row.get("generation", 0),
                            review=review_trade(row).to_dict())


@router.get("/trade-analyses", response_model=list[TradeAnalysisOut], responses=READ)
async def trade_analyses(user: CurrentUser, db: DbDep, limit: Limit = 50,
                         offset: Offset = 0) -> list[TradeAnalysisOut]:
    """A rule-based review of each closed trade, newest exit first (trading.trade_review)."""
    rows = await reads.closed_trades(db, PaperSession.id_of(user.user_id), limit, offset)
    return [_analysis_out(r) for r in rows]


@router.get("/trade-analyses/{trade_id}", response_model=TradeAnalysisOut, responses={**READ, **NOT_FOUND})
async def trade_analysis(trade_id: TradeId, user: CurrentUser, db: DbDep) -> TradeAnalysisOut:
    row = await reads.closed_trade(db, PaperSession.id_of(user.user_id), trade_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no closed trade {trade_id}")
    return _analysis_out(row)


async def _suggestions(session: PaperSession, db: DbDep) -> SuggestionSetOut:
    found = await session.status()
    record = await reads.settings_record(db, session.workflow_id)
    rows = await reads.closed_trades(db, session.workflow_id, RECENT_TRADES, 0, found.generation)
    made = suggest(found.metrics or {}, [r["trade"] for r in rows], record["engine_settings"],
                   record["analysis_settings"])
    return SuggestionSetOut(session_id=session.workflow_id, generation=found.generation,
                            market_time=found.market_time, trades_considered=len(rows), metrics=found.metrics,
                            suggestions=[SuggestionOut.model_validate(s.to_dict()) for s in made])


@router.get("/config-suggestions", response_model=list[SuggestionOut], responses=READ)
async def config_suggestions(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep, db: DbDep,
                             tier: Tier | None = None) -> list[SuggestionOut]:
    """Suggestions of the documented rules (trading.config_rules) over the current account's
    metrics and last closed trades; ``tier`` filters by tuning tier."""
    made = await _suggestions(_session(user, temporal, settings), db)
    return [s for s in made.suggestions if tier is None or s.tier == tier]


@router.get("/config-suggestions/latest", response_model=SuggestionSetOut, responses=READ)
async def latest_config_suggestions(user: CurrentUser, temporal: TemporalDep, settings: SettingsDep,
                                    db: DbDep) -> SuggestionSetOut:
    """The newest set of suggestions, with what it was computed from (computed on read)."""
    return await _suggestions(_session(user, temporal, settings), db)
