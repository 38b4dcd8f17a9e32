"""API shapes of /api/paper-trading and /api/backtests (pydantic), separate from what is stored.

Inputs forbid unknown fields and non-finite numbers; ranges are the domain's own (``EngineSettings``,
``AnalysisSettings``), checked by the session's validators, so a rule lives in one place and a
rejected value comes back as a 422 naming the field and the reason.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Finite = Annotated[float, Field(allow_inf_nan=False)]
Symbol = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,20}$", examples=["BTCUSDT"])]
Interval = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]
# NONE: the change only lowers risk (applied at once, no cooldown).
Tier = Literal["NONE", "GREEN", "YELLOW", "RED"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    detail: str


# -- settings --------------------------------------------------------------------------------------
class RiskSettingsIn(StrictModel):
    risk_per_trade_pct: Finite | None = None
    max_stop_distance_pct: Finite | None = None
    max_portfolio_risk_pct: Finite | None = None
    max_daily_loss_pct: Finite | None = None
    max_consecutive_losses: int | None = None
    cooldown_minutes: Finite | None = None
    max_correlation: Finite | None = None
    correlation_window: int | None = None
    min_correlation_returns: int | None = None
    enabled: list[str] | None = Field(None, max_length=16)


class BasicSettingsIn(StrictModel):
    """Engine settings to change; omitted fields keep their value (``risk`` merges field by field)."""

    market: Literal["futures", "spot"] | None = Field(
        None, description="futures: USDⓈ-M perpetuals; spot: long only at 1x. Changes only on a fresh account "
                          "(before the first start, or after a reset)")
    account_currency: str | None = Field(
        None, pattern=r"^[A-Z0-9]{2,10}$",
        description="the currency the balance and profit are in (USDT, BTC …); every symbol traded is quoted in "
                    "it. Changes only on a fresh account")
    leverage: int | None = None
    starting_balance: Finite | None = Field(None, description="applies from the next reset (or before a start)")
    taker_fee: Finite | None = None
    maker_fee: Finite | None = None
    slippage_bps: Finite | None = None
    fill_price: Literal["next_open", "close"] | None = Field(
        None, description="next_open: a closed candle's decision fills at the next candle's open; close: at its "
                          "close (only to cross-check tools that fill so)")
    stop_loss_pct: Finite | None = None
    take_profit_pct: Finite | None = None
    trailing_stop_pct: Finite | None = None
    position_sizing: Literal["risk", "fixed_quantity", "fixed_notional"] | None = None
    fixed_quantity: Finite | None = None
    fixed_notional: Finite | None = None
    min_confidence: Finite | None = None
    close_on_opposite_signal: bool | None = None
    funding_mode: Literal["series", "constant", "off"] | None = None
    funding_rate: Finite | None = None
    partial_fill_min_ratio: Finite | None = None
    seed: int | None = None
    risk: RiskSettingsIn | None = None


class StrategySettingsIn(StrictModel):
    """Which strategies vote and how many must agree."""

    enabled: list[str] | None = Field(None, max_length=16)
    min_agree: int | None = None
    weights: dict[str, Finite] | None = None
    min_vote_weight: Finite | None = None
    ai_mode: Literal["off", "advisory", "gate", "voter"] | None = None
    ai_weight: Finite | None = None
    ai_min_confidence: Finite | None = None
    ai_deadline_s: Finite | None = None


class RsiIn(StrictModel):
    length: int | None = None
    oversold: Finite | None = None
    overbought: Finite | None = None


class MacdIn(StrictModel):
    fast: int | None = None
    slow: int | None = None
    signal: int | None = None


class BollingerIn(StrictModel):
    length: int | None = None
    std: Finite | None = None


class VolumeIn(StrictModel):
    length: int | None = None
    min_ratio: Finite | None = None


class StochasticIn(StrictModel):
    k: int | None = None
    d: int | None = None
    smooth_k: int | None = None
    oversold: Finite | None = None
    overbought: Finite | None = None


class IndicatorSettingsIn(StrictModel):
    """Indicator parameters of the strategies; omitted ones keep their value."""

    rsi: RsiIn | None = None
    macd: MacdIn | None = None
    bollinger: BollingerIn | None = None
    volume: VolumeIn | None = None
    stochastic: StochasticIn | None = None
    atr_length: int | None = None


class SettingsIn(StrictModel):
    basic: BasicSettingsIn | None = None
    strategy: StrategySettingsIn | None = None
    indicators: IndicatorSettingsIn | None = None
    expected_version: int | None = Field(None, ge=0, le=2**53, description=(
        "the settings version this change was made against (GET …/settings); another one is a 409, so "
        "a change made on stale settings never lands silently"))


class SettingsOut(BaseModel):
    status: str
    version: int | None = Field(None, description="counts every settings change of the session")
    basic: dict[str, Any]
    strategy: dict[str, Any]
    indicators: dict[str, Any]


class SettingInfoOut(BaseModel):
    """One setting as the settings form shows it: where it lives, its label, unit and help, and what
    it accepts (a range for numbers, choices for the others)."""

    path: str = Field(description="as the API names it: leverage, risk.max_daily_loss_pct, rsi.length")
    section: Literal["basic", "strategy", "indicators"]
    label: str
    kind: Literal["number", "integer", "choice", "flag", "text", "list"]
    unit: str
    help: str
    minimum: float | None
    maximum: float | None
    above_minimum: bool = Field(description="the minimum itself is not allowed")
    below_maximum: bool = Field(description="the maximum itself is not allowed")
    choices: list[str] = Field(description="the values a choice takes, or the items a list may hold")
    optional: bool = Field(description="null (off) is allowed")


class SettingsCheckOut(BaseModel):
    """Whether the session would accept a settings change; nothing is changed either way."""

    valid: bool
    field: str | None = Field(None, description="the field a rejection is about, when known")
    reason: str | None = Field(None, description="why the change would be rejected")


class SectionOut(BaseModel):
    status: str
    version: int | None = None
    settings: dict[str, Any]


# -- session ---------------------------------------------------------------------------------------
class StartIn(StrictModel):
    symbols: list[Symbol] | None = Field(None, min_length=1, max_length=20,
                                         description="default: the first stream the feed always follows")
    interval: Interval | None = None
    basic: BasicSettingsIn | None = None
    strategy: StrategySettingsIn | None = None
    indicators: IndicatorSettingsIn | None = None


class SymbolsIn(StrictModel):
    symbols: list[Symbol] = Field(min_length=1, max_length=20)


class SymbolsOut(BaseModel):
    status: str
    source: str
    symbols: list[str]
    interval: str


class SignalIntervalIn(StrictModel):
    interval: Interval


class StatusOut(BaseModel):
    session_id: str
    status: Literal["new", "running", "stopped"]
    exists: bool = Field(description="false until the first write created the session")
    source: str
    symbols: list[str]
    interval: str
    market_time: int
    last_open_time: dict[str, int]
    queued: int
    candles_processed: int
    duplicates_dropped: int
    gap_candles_filled: int
    candles_ignored: int
    candles_rejected: int
    trades_closed: int
    entries_enabled: bool
    equity: float
    generation: int
    metrics: dict[str, Any] | None
    lagging: list[str]
    degraded: dict[str, str] | None = Field(None, description=(
        "what does not work right now (analysis, commits, market data) and why; the session recovers by itself"))
    pending_writes: int = Field(0, description="records waiting to be written to the database")
    journal_seq: int = Field(0, description="sequence number of the last write the session applied")
    settings_version: int = Field(0, description="counts every settings change")
    waiting_entries: dict[str, Literal["long", "short"]] | None = Field(None, description=(
        "per symbol, the side a closed candle decided: it fills at the next candle's open (fill_price next_open)"))


class AccountOut(BaseModel):
    cash: float
    equity: float
    unrealised: float
    margin_in_use: float
    available: float
    fees_paid: float
    funding_paid: float
    open_positions: int
    pending_orders: int


class PortfolioOut(BaseModel):
    session_id: str
    status: str
    account: AccountOut
    positions: list[dict[str, Any]]


class ManualOrderIn(StrictModel):
    symbol: Symbol
    side: Literal["long", "short"]
    order_type: Literal["market", "limit", "stop_limit"] = "market"
    quantity: float = Field(gt=0, allow_inf_nan=False)
    limit_price: float | None = Field(None, gt=0, allow_inf_nan=False)
    stop_price: float | None = Field(None, gt=0, allow_inf_nan=False)
    reduce_only: bool = False
    stop_loss: float | None = Field(None, gt=0, allow_inf_nan=False)
    take_profit: float | None = Field(None, gt=0, allow_inf_nan=False)


class OrderResultOut(BaseModel):
    order: dict[str, Any] | None = Field(description="the resting order (limit / stop_limit)")
    fills: list[dict[str, Any]]
    trades: list[dict[str, Any]] = Field(description="trades a reduce-only order closed")


class ClosedTradeOut(BaseModel):
    trade_id: int
    generation: int
    symbol: str
    trade: dict[str, Any] = Field(description="the Engine's trade record")
    partial_closes: list[dict[str, Any]]


class ResetOut(BaseModel):
    cancelled_orders: list[dict[str, Any]]
    closed_trades: list[dict[str, Any]]
    status: StatusOut


class AnalysisOut(BaseModel):
    analysis_key: str
    symbol: str
    interval: str
    open_time: int
    warming_up: bool
    direction: str | None
    confidence: float | None
    reason: str | None
    verdicts: list[dict[str, Any]]
    indicators: dict[str, float | None] = Field(
        default_factory=dict, description="every indicator on this candle (null while undefined)")


class TriggerOut(BaseModel):
    analyses: list[AnalysisOut]


class SignalPage(BaseModel):
    items: list[AnalysisOut]
    next_before: int | None = Field(description="pass as `before` for the next (older) page")


class RiskCheckOut(BaseModel):
    name: str
    passed: bool
    enabled: bool
    reason: str
    values: dict[str, Any] = Field(default_factory=dict)


class DecisionOut(BaseModel):
    """A long/short consensus the session stepped on, and what it made of it (``AISignalReceived``)."""

    symbol: str
    interval: str
    open_time: int
    direction: str
    confidence: float | None = None
    reason: str | None = None
    analysis_key: str
    risk: list[RiskCheckOut] = Field(default_factory=list, description="the checks of the entry it attempted")
    rejection: str | None = Field(None, description="why it did not trade; null when it traded or tried nothing")
    opened: bool = False
    ai: dict[str, Any] | None = Field(None, description=(
        "with Grok's part on (ai_mode): mode, source (grok or fallback), Grok's direction, confidence and "
        "reasoning or the fallback reason, the technical consensus, and the decision record's ID"))


class EquityPointOut(BaseModel):
    time: int = Field(description="market time (ms) of the committed step")
    equity: float
    cash: float | None = None
    unrealised: float | None = None
    generation: int = 0


class BackingOut(BaseModel):
    """How the strategies stood on the trade on its entry or exit candle."""

    direction: str | None = Field(description="the consensus")
    confidence: float | None
    reason: str | None
    agreeing: list[str] = Field(description="strategies pointing the trade's way")
    opposing: list[str]
    neutral: list[str]
    indicators: dict[str, float | None] = Field(description="every indicator on that candle (null while undefined)")


class TradeReviewOut(BaseModel):
    """The rule-based review of a closed trade (trading.trade_review)."""

    trade_id: int
    symbol: str
    side: str
    outcome: Literal["win", "loss", "flat"]
    close_reason: str
    entry_time: int
    exit_time: int
    duration_ms: int
    entry_price: float
    exit_price: float
    quantity: float
    net_pnl: float
    gross_pnl: float
    fees: float
    return_pct: float = Field(description="net PnL over the margin, in percent")
    mfe: float = Field(description="maximum favourable excursion, quote currency")
    mae: float = Field(description="maximum adverse excursion, quote currency")
    mfe_pct: float = Field(description="of the entry notional, in percent")
    mae_pct: float
    captured: float | None = Field(description="net PnL as a share of the MFE")
    manual_entry: bool
    entry: BackingOut | None = Field(description="null for a manual entry")
    exit: BackingOut | None = Field(description="null for a manual close")
    verdict: str


class TradeAnalysisOut(BaseModel):
    trade_id: int
    generation: int
    review: TradeReviewOut


class SuggestionOut(BaseModel):
    rule: str
    parameter: str
    current: Any
    proposed: Any
    reason: str
    tier: Tier


class SuggestionSetOut(BaseModel):
    session_id: str
    generation: int
    market_time: int
    trades_considered: int
    metrics: dict[str, Any] | None
    suggestions: list[SuggestionOut]


# -- backtests -------------------------------------------------------------------------------------
class MarketDataIn(StrictModel):
    symbol: Symbol
    interval: Interval
    start: int = Field(ge=0, le=2**53)
    end: int = Field(ge=0, le=2**53)


class AnalysisSettingsIn(StrategySettingsIn, IndicatorSettingsIn):
    pass


class BacktestIn(StrictModel):
    dataset: str | None = Field(None, max_length=200, description="a file under data/candles",
                                examples=["BTCUSDT-5m-2023-01.csv.gz"])
    datasets: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None, min_length=1, max_length=20, description="several files under data/candles, one per symbol, one "
                                                       "interval: the symbols trade together in one account")
    market_data: MarketDataIn | None = None
    engine_settings: BasicSettingsIn | None = None
    analysis_settings: AnalysisSettingsIn | None = None
    settings: dict[str, Any] | None = Field(None, description=(
        "a settings document (GET /api/paper-trading/settings/export), taken unchanged instead of "
        "engine_settings and analysis_settings; without dataset(s) the backtest runs on the stored candles "
        "of its symbols and interval"))
    warmup_from: int | None = Field(None, ge=0, le=2**53)
    trade_from: int | None = Field(None, ge=0, le=2**53)
    trade_to: int | None = Field(None, ge=0, le=2**53)
    replay_ai_decisions: bool | None = Field(None, description=(
        "with ai_mode gate or voter: trade what your paper session decided on each candle it recorded "
        "(Grok's answer or the fallback it used), the consensus alone elsewhere; the report's "
        "data.ai_replay counts both"))


class BacktestOut(BaseModel):
    backtest_id: str
    status: str
    phase: str | None = None
    progress: float = 0.0
    error: str | None = None
    request: dict[str, Any] | None = None
    created_at: Any = None
    finished_at: Any = None
    summary: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    trades: list[dict[str, Any]] | None = Field(None, description=(
        "the first 100 trades of a completed run, in the order they closed (all: GET …/trades or …/export)"))
    equity_curve: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    report: dict[str, Any] | None = Field(None, description=(
        "parameters, data, metrics and tables (per_pair, per_exit_reason, durations, per_month) of a completed run"))
    trades_total: int | None = Field(None, description="every trade of the run (trades holds the first 100)")
    price_curves: dict[str, Any] | None = Field(None, description=(
        "each symbol's closes over the traded window (close_times, close; at most 1,000 points)"))


class BacktestTradesOut(BaseModel):
    items: list[dict[str, Any]] = Field(description="the Engine's trade records, in the order they closed")
    total: int
    offset: int
    limit: int


class BacktestRunOut(BaseModel):
    backtest_id: str
    created_at: Any = None
    data: dict[str, Any]
    source: dict[str, Any] = Field(description="where the candles came from (files or stored data)")
    metrics: dict[str, Any]
    per_pair: list[dict[str, Any]]


class ParameterDifferenceOut(BaseModel):
    parameter: str = Field(examples=["settings.engine.leverage"])
    values: list[Any] = Field(description="each run's value, in the order of runs")


class BacktestComparisonOut(BaseModel):
    runs: list[BacktestRunOut]
    differences: list[ParameterDifferenceOut]


class BacktestDeletedOut(BaseModel):
    backtest_id: str
    deleted: bool
    trades_deleted: int
