"""Paper trading: the caller's session ``session:{user}:paper``, every use case of its API.

Writes are the session workflow's updates (update-with-start: the first write creates the session),
each under an update ID derived from the caller's idempotency key; writes that move money (orders,
cancels, closes, reset) require one. Live detail comes from the workflow's queries, records (closed
trades, settings, signals, reviews) from MongoDB, every read scoped by the caller's session ID, so
another user's trade or order is not found.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client

from activities.trade_reads import closed_trades, rule_suggestions
from core.contracts import (
    SESSION_NEW,
    CancelOrderInput,
    CloseTradeInput,
    ManualOrderInput,
    ManualOrderResult,
    ResetSessionResult,
    SessionSettingsRecord,
    SessionStatus,
    SettingsUpdated,
    SignalIntervalInput,
    StartSessionInput,
    UpdateSettingsInput,
    UpdateSymbolsInput,
)
from core.settings import Settings
from services import paper_reads as reads
from services.errors import DomainError, Forbidden, NotFound, Rejected
from services.exchange_symbols import ExchangeSymbols
from services.idempotency import checked_key, update_id
from services.paper_session import SessionClient, new_portfolio
from services.principal import Principal
from trading.analysis_settings import AnalysisSettings
from trading.config_rules import Suggestion
from trading.errors import InvalidInput
from trading.setting_catalog import SETTINGS, Setting
from trading.settings import EngineSettings
from trading.trade_review import TradeReview, review_trade
from workflows.session_rules import check_symbols, checked_settings, merged_engine_settings
from workflows.trading_session import TradingSessionWorkflow

NOTHING_TO_CHANGE = "nothing to change: give basic, strategy and/or indicators"


@dataclass(frozen=True)
class SessionView:
    status: SessionStatus
    exists: bool  # False until the first write created the session


@dataclass(frozen=True)
class SettingsPatch:
    """Sections of settings to change; omitted fields keep their value (objects merge field by field).
    ``expected_version``: the version the caller saw; another one is a conflict."""

    basic: dict[str, Any] | None = None
    strategy: dict[str, Any] | None = None
    indicators: dict[str, Any] | None = None
    expected_version: int | None = None

    @property
    def empty(self) -> bool:
        return self.basic is None and self.strategy is None and self.indicators is None

    def update_input(self) -> UpdateSettingsInput:
        return UpdateSettingsInput(engine_settings=self.basic or None,
                                   analysis_settings=reads.analysis_patch(self.strategy, self.indicators),
                                   expected_version=self.expected_version)


@dataclass(frozen=True)
class SettingsView:
    status: str
    version: int | None
    basic: dict[str, Any]
    strategy: dict[str, Any]
    indicators: dict[str, Any]

    @classmethod
    def of(cls, record: dict[str, Any]) -> SettingsView:
        return cls(status=record["status"], version=record.get("version"), basic=record["engine_settings"],
                   strategy=reads.strategy_part(record["analysis_settings"]),
                   indicators=reads.indicator_part(record["analysis_settings"]))


@dataclass(frozen=True)
class SettingsCheck:
    valid: bool
    field: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StartRequest:
    symbols: tuple[str, ...] | None = None
    interval: str | None = None
    settings: SettingsPatch = field(default_factory=SettingsPatch)


@dataclass(frozen=True)
class Portfolio:
    session_id: str
    status: str
    account: dict[str, Any]
    positions: list[dict[str, Any]]


@dataclass(frozen=True)
class SymbolsView:
    status: str
    source: str
    symbols: list[str]
    interval: str


@dataclass(frozen=True)
class TradeAnalysis:
    trade_id: int
    generation: int
    review: TradeReview


@dataclass(frozen=True)
class SuggestionSet:
    session_id: str
    generation: int
    market_time: int
    trades_considered: int
    metrics: dict[str, Any] | None
    suggestions: list[Suggestion]


class PaperTrading:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase, exchange: ExchangeSymbols) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.exchange = exchange

    def session(self, principal: Principal) -> SessionClient:
        return SessionClient(self.temporal, self.settings, principal.user_id)

    async def _write(self, principal: Principal, route: str, request: Any, update: Any, *arg: Any,
                     key: str | None, money: bool = False) -> Any:
        """Send ``update`` for the caller's ``request`` (what its idempotency key is bound to)."""
        principal.require("sensitive")
        checked = checked_key(key, required=money)
        write = update_id(principal.user_id, route, checked, request)
        return await self.session(principal).update(update, *arg, update_id=write)

    async def _require_session(self, principal: Principal, otherwise: DomainError) -> None:
        """Raise ``otherwise`` unless the caller's session exists (a write would create it)."""
        if not await self.session(principal).exists():
            raise otherwise

    # -- status and account ------------------------------------------------------------------------
    async def status(self, principal: Principal) -> SessionView:
        session = self.session(principal)
        found = await session.query(TradingSessionWorkflow.status)
        if found is None:
            return SessionView(await session.status(), exists=False)
        return SessionView(found, exists=True)

    async def portfolio(self, principal: Principal) -> Portfolio:
        session = self.session(principal)
        account = await session.query(TradingSessionWorkflow.portfolio)
        positions = await session.query(TradingSessionWorkflow.open_trades) if account is not None else []
        found = await session.status()
        return Portfolio(session.workflow_id, found.status, account or new_portfolio(), positions or [])

    async def open_trades(self, principal: Principal) -> list[dict[str, Any]]:
        return await self.session(principal).query(TradingSessionWorkflow.open_trades) or []

    async def pending_orders(self, principal: Principal) -> list[dict[str, Any]]:
        return await self.session(principal).query(TradingSessionWorkflow.pending_orders) or []

    async def closed_trades(self, principal: Principal, limit: int, offset: int,
                            generation: int | None = None) -> list[dict[str, Any]]:
        return await closed_trades(self.db, self.session(principal).workflow_id, limit, offset, generation)

    async def close_trade(self, principal: Principal, trade_id: int, key: str | None) -> dict[str, Any]:
        """Close an open trade at the latest price; a closed or unknown trade is not found."""
        await self._require_session(principal, NotFound(f"no open trade {trade_id}"))
        result: dict[str, Any] = await self._write(principal, "close_trade", trade_id,
                                                   TradingSessionWorkflow.close_trade, CloseTradeInput(trade_id),
                                                   key=key, money=True)
        return result

    # -- settings ----------------------------------------------------------------------------------
    async def settings_view(self, principal: Principal) -> SettingsView:
        return SettingsView.of(await reads.settings_record(self.db, self.session(principal).workflow_id))

    async def update_settings(self, principal: Principal, patch: SettingsPatch, key: str | None) -> SettingsView:
        if not principal.human:
            # An agent could otherwise skip YELLOW and RED: its writes are proposals, parameter by parameter.
            raise Forbidden("an agent changes settings through tuning proposals (services.tuning), never directly")
        if patch.empty:
            raise Rejected(None, NOTHING_TO_CHANGE)
        if not await self.session(principal).exists():
            # The update would create the session before its validator refuses the change.
            found = await self.check_settings(principal, patch)
            if not found.valid:
                raise Rejected(found.field, found.reason or "invalid settings")
        done: SettingsUpdated = await self._write(principal, "update_settings", patch,
                                                  TradingSessionWorkflow.update_settings, patch.update_input(),
                                                  key=key)
        return SettingsView.of(asdict(done.settings))

    def settings_catalog(self) -> list[Setting]:
        """Every setting as users see it: label, unit, help, and the values it accepts."""
        return list(SETTINGS.values())

    async def check_settings(self, principal: Principal, patch: SettingsPatch) -> SettingsCheck:
        """A dry run of ``update_settings``: whether the session would accept these changes, with the
        field and reason it would give, by the same rules its update runs; nothing changes."""
        if patch.empty:
            return SettingsCheck(valid=False, reason=NOTHING_TO_CHANGE)
        record = await reads.settings_record(self.db, self.session(principal).workflow_id)
        request = patch.update_input()
        try:
            checked_settings(EngineSettings.from_dict(record["engine_settings"]),
                             AnalysisSettings.from_dict(record["analysis_settings"]),
                             request.engine_settings, request.analysis_settings,
                             fresh=record["status"] == SESSION_NEW)
        except InvalidInput as exc:
            return SettingsCheck(valid=False, field=exc.field, reason=exc.reason)
        return SettingsCheck(valid=True)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def symbols(self, principal: Principal) -> SymbolsView:
        found = await self.session(principal).status()
        return SymbolsView(found.status, found.source, list(found.symbols), found.interval)

    async def _engine_settings(self, principal: Principal) -> EngineSettings:
        record: SessionSettingsRecord | None = await self.session(principal).query(TradingSessionWorkflow.settings)
        return EngineSettings() if record is None else EngineSettings.from_dict(record.engine_settings)

    async def _specs(self, symbols: tuple[str, ...], settings: EngineSettings) -> list[dict[str, Any]]:
        """The exchange's filters of ``symbols`` for this account, or ``Rejected`` naming the symbol
        the account cannot trade and why."""
        check_symbols_or_reject(symbols)
        specs = await self.exchange.specs_for(symbols, settings.market, settings.account_currency)
        return [asdict(spec) for spec in specs]

    async def update_symbols(self, principal: Principal, symbols: list[str], key: str | None) -> SymbolsView:
        specs = await self._specs(tuple(symbols), await self._engine_settings(principal))
        found: SessionStatus = await self._write(principal, "update_symbols", symbols,
                                                 TradingSessionWorkflow.update_symbols,
                                                 UpdateSymbolsInput(tuple(symbols), tuple(specs)), key=key)
        return SymbolsView(found.status, found.source, list(found.symbols), found.interval)

    async def start(self, principal: Principal, request: StartRequest, key: str | None) -> SessionStatus:
        """Start trading on this deployment's feed. Symbols and interval default to the session's, else
        to the first stream the feed always follows; settings given here change before the start."""
        default_symbol, default_interval = (self.settings.feed_stream_list or (("BTCUSDT", "5m"),))[0]
        current = await self.session(principal).status()
        patch = request.settings
        symbols = tuple(request.symbols or current.symbols or (default_symbol,))
        try:
            # The symbols start with the filters read below, not those of the ones followed before.
            current_engine = replace(await self._engine_settings(principal), symbols=())
            engine = merged_engine_settings(current_engine, patch.basic)
        except InvalidInput as exc:
            raise Rejected(exc.field, exc.reason) from None
        start = StartSessionInput(
            source=self.settings.market_source,
            symbols=symbols,
            interval=request.interval or current.interval or default_interval,
            engine_settings={**(patch.basic or {}), "symbols": await self._specs(symbols, engine)},
            analysis_settings=reads.analysis_patch(patch.strategy, patch.indicators),
        )
        started: SessionStatus = await self._write(principal, "start", request, TradingSessionWorkflow.start, start,
                                                   key=key)
        return started

    async def stop(self, principal: Principal, key: str | None) -> SessionStatus:
        """Block new entries; open positions and resting orders keep being managed."""
        stopped: SessionStatus = await self._write(principal, "stop", None, TradingSessionWorkflow.stop, key=key)
        return stopped

    async def set_signal_interval(self, principal: Principal, interval: str, key: str | None) -> SessionStatus:
        done: SessionStatus = await self._write(principal, "set_signal_interval", interval,
                                                TradingSessionWorkflow.set_signal_interval,
                                                SignalIntervalInput(interval), key=key)
        return done

    async def reset(self, principal: Principal, key: str | None) -> ResetSessionResult:
        done: ResetSessionResult = await self._write(principal, "reset", None, TradingSessionWorkflow.reset, key=key,
                                                     money=True)
        return done

    # -- orders ------------------------------------------------------------------------------------
    async def place_order(self, principal: Principal, order: ManualOrderInput, key: str | None) -> ManualOrderResult:
        done: ManualOrderResult = await self._write(principal, "place_order", order,
                                                    TradingSessionWorkflow.place_order, order, key=key, money=True)
        return done

    async def cancel_order(self, principal: Principal, order_id: int, key: str | None) -> dict[str, Any]:
        await self._require_session(principal, NotFound(f"no pending order {order_id}"))
        done: dict[str, Any] = await self._write(principal, "cancel_order", order_id,
                                                 TradingSessionWorkflow.cancel_order, CancelOrderInput(order_id),
                                                 key=key, money=True)
        return done

    # -- analysis and signals ----------------------------------------------------------------------
    async def trigger_analysis(self, principal: Principal, key: str | None) -> list[dict[str, Any]]:
        """The technical analysis of each stream's last processed candle, run now; it never trades."""
        await self._require_session(principal, Rejected("status", "no candle processed yet: nothing to analyse"))
        results = await self._write(principal, "analyze_now", None, TradingSessionWorkflow.analyze_now, key=key)
        keys = [r.analysis_key for r in results.values()]
        docs = {d["analysis_key"]: d async for d in self.db.ai_analysis_results.find(
            {"analysis_key": {"$in": keys}}, reads.ANALYSIS_FIELDS)}
        return [docs[k] for k in keys if k in docs]

    async def signals_history(self, principal: Principal, limit: int, before: int | None) -> list[dict[str, Any]]:
        record = await reads.settings_record(self.db, self.session(principal).workflow_id)
        return await reads.analyses(self.db, record["symbols"], record["interval"], record["analysis_settings_hash"],
                                    limit, before)

    async def latest_signals(self, principal: Principal) -> list[dict[str, Any]]:
        record = await reads.settings_record(self.db, self.session(principal).workflow_id)
        return await reads.latest_analyses(self.db, record["symbols"], record["interval"],
                                           record["analysis_settings_hash"])

    async def decisions(self, principal: Principal, limit: int) -> list[dict[str, Any]]:
        return await reads.decisions(self.db, principal.user_id, self.session(principal).workflow_id, limit)

    async def equity_history(self, principal: Principal, limit: int, since: int | None,
                             generation: int | None) -> list[dict[str, Any]]:
        return await reads.equity_history(self.db, self.session(principal).workflow_id, limit, since, generation)

    async def trade_analyses(self, principal: Principal, limit: int, offset: int) -> list[TradeAnalysis]:
        rows = await closed_trades(self.db, self.session(principal).workflow_id, limit, offset)
        return [_analysis(r) for r in rows]

    async def trade_analysis(self, principal: Principal, trade_id: int) -> TradeAnalysis:
        row = await reads.closed_trade(self.db, self.session(principal).workflow_id, trade_id)
        if row is None:
            raise NotFound(f"no closed trade {trade_id}")
        return _analysis(row)

    async def config_suggestions(self, principal: Principal) -> SuggestionSet:
        """Suggestions of the documented rules (trading.config_rules) over the current account's
        metrics and last closed trades (computed on read)."""
        session = self.session(principal)
        found = await session.status()
        record = await reads.settings_record(self.db, session.workflow_id)
        made, considered = await rule_suggestions(self.db, session.workflow_id, found.generation, found.metrics,
                                                  record["engine_settings"], record["analysis_settings"])
        return SuggestionSet(session.workflow_id, found.generation, found.market_time, considered, found.metrics,
                             made)


def _analysis(row: dict[str, Any]) -> TradeAnalysis:
    return TradeAnalysis(row["trade_id"], row.get("generation", 0), review_trade(row))


def check_symbols_or_reject(symbols: tuple[str, ...]) -> None:
    try:
        check_symbols(symbols)
    except InvalidInput as exc:
        raise Rejected(exc.field, exc.reason) from None

