"""What a trading session writes and reads outside its workflow.

``write_session_records`` writes a session's outbox in order (a local activity): each step's
commit — trades (each with a copy of the analysis at entry and at exit), the account snapshot with
its running metrics, a portfolio-history point, the day's ``performance_metrics`` row when the step
crossed 00:00 UTC, and events — its settings records and its journal, each under a natural unique
key so a retry after a crash between two writes writes nothing twice. Every record's writes are bounded
(``activities.db.bounded``), so a MongoDB outage fails them quickly and the session says so instead of
waiting.

``latest_price`` finds the freshest price for a manual fill or a close between candles: the
exchange's book ticker (USDⓈ-M) or 24-hour ticker (spot) when the session follows this worker's
exchange, else the feed's latest price, else the newest stored candle's close.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import events
from activities.binance import BinanceRestClient
from activities.db import bounded
from activities.exchange_errors import ExchangeError
from core.contracts import (
    FundingRateInput,
    FundingRateResult,
    JournalEntry,
    LatestPrice,
    LatestPriceInput,
    SessionCommit,
    SessionSettingsRecord,
    SessionWritesInput,
)
from trading.funding import FUNDING_INTERVAL_MS, grid_floor

log = logging.getLogger("durabot.session.commit")

# The ApplicationError type of a symbol nothing is known of yet (no exchange price, nothing stored).
NO_PRICE = "NoPrice"
EXCHANGE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class PriceSource:
    """The exchange this worker's feed follows: asked first for prices of sessions on that feed."""

    source: str
    rest_url: str
    futures_url: str


# What a trade keeps of the analysis that opened or closed it (the full record stays in
# ai_analysis_results, which expires; the trade's copy does not).
ANALYSIS_SNAPSHOT_FIELDS = ("analysis_key", "symbol", "interval", "open_time", "settings_hash", "warming_up",
                            "direction", "confidence", "reason", "verdicts", "indicators")


def open_trade_doc(commit: SessionCommit, position: dict[str, Any], analysis: dict | None) -> dict[str, Any]:
    return {
        "session_id": commit.session_id,
        "trade_id": position["trade_id"],
        "user_id": commit.user_id,
        "generation": commit.generation,
        "symbol": position["symbol"],
        "status": "open",
        "entry_time": position["entry_time"],
        "exit_time": None,
        "position": position,
        "entry_analysis_key": commit.analysis_key,
        "entry_analysis": analysis,
        "created_at": datetime.now(UTC),
    }


def closed_trade_fields(commit: SessionCommit, trade: dict[str, Any], analysis: dict | None) -> dict[str, Any]:
    """The fields a close sets; ``trade`` is ``Trade.to_dict()`` verbatim (the JSON compared with backtests)."""
    return {
        "user_id": commit.user_id,
        "generation": commit.generation,
        "symbol": trade["symbol"],
        "status": "closed",
        "entry_time": trade["entry_time"],
        "exit_time": trade["exit_time"],
        "trade": trade,
        "exit_analysis_key": commit.analysis_key,
        "exit_analysis": analysis,
    }


def account_doc(commit: SessionCommit) -> dict[str, Any]:
    metrics = commit.metrics or {}
    return {
        "user_id": commit.user_id, "time": commit.time, "status": commit.status, "generation": commit.generation,
        **commit.account,
        "metrics": metrics,
        # The seed's flat fields, for readers that predate the metrics object.
        "win_rate": metrics.get("win_rate"), "sharpe_ratio": metrics.get("sharpe"),
        "total_trades": metrics.get("trades", 0),
    }


def trade_events(commit: SessionCommit) -> list[dict[str, Any]]:
    docs = [
        events.event_doc(events.TRADE_EXECUTED, f"{commit.session_id}:{p['trade_id']}:open",
                         {"session_id": commit.session_id, "action": "open", "position": p},
                         symbol=p["symbol"], user_id=commit.user_id)
        for p in commit.opened
    ]
    docs += [
        events.event_doc(events.TRADE_EXECUTED, f"{commit.session_id}:{t['id']}:close",
                         {"session_id": commit.session_id, "action": "close", "trade": t},
                         symbol=t["symbol"], user_id=commit.user_id)
        for t in commit.closed
    ]
    docs += [
        events.event_doc(events.TRADE_EXECUTED, f"{commit.session_id}:{t['id']}:part:{commit.sequence}",
                         {"session_id": commit.session_id, "action": "partial_close", "trade": t},
                         symbol=t["symbol"], user_id=commit.user_id)
        for t in commit.partial_closes
    ]
    for decided in (commit.acted_on, commit.signal):
        if decided:
            docs.append(events.event_doc(events.AI_SIGNAL_RECEIVED, f"{commit.session_id}:{decided['analysis_key']}",
                                         {"session_id": commit.session_id, "source": "technical",
                                          "signal": decided["direction"], "reasoning": decided["reason"],
                                          **decided},
                                         symbol=decided["symbol"], user_id=commit.user_id))
    if commit.opened or commit.closed or commit.partial_closes:
        # Several commits can share a market time (two symbols, manual orders between candles).
        position_key = f"{commit.session_id}:{commit.time}:{commit.sequence}"
        docs.append(events.event_doc(events.POSITION_UPDATE, position_key,
                                     {"session_id": commit.session_id, "time": commit.time, "account": commit.account},
                                     user_id=commit.user_id))
    return docs


class SessionStoreActivities:
    def __init__(self, db: AsyncDatabase, prices: PriceSource | None = None) -> None:
        self.db = db
        self.prices = prices

    @activity.defn
    async def funding_rate(self, request: FundingRateInput) -> FundingRateResult:
        """The USDⓈ-M funding rate at a grid instant, from the exchange this worker follows. An
        exchange error fails the attempt (the session retries a few times, then falls back to the
        constant rate and says so)."""
        if self.prices is None:
            return FundingRateResult(None)
        async with BinanceRestClient(self.prices.rest_url, futures_base_url=self.prices.futures_url,
                                     timeout_s=EXCHANGE_TIMEOUT_S) as exchange:
            rows = await exchange.funding_rates(request.symbol, start_ms=request.instant,
                                                end_ms=request.instant + FUNDING_INTERVAL_MS - 1, limit=10)
        found = [r.rate for r in rows if grid_floor(r.funding_time) == request.instant]
        return FundingRateResult(found[0] if found else None)

    @activity.defn
    async def write_session_records(self, request: SessionWritesInput) -> int:
        """Write a batch of a session's outbox in order; return how many records it held."""
        for write in request.writes:
            with bounded():
                if write.commit is not None:
                    await self.commit_session_step(write.commit)
                if write.settings is not None:
                    await self.save_session_settings(write.settings)
                if write.journal is not None:
                    await self._journal(request.session_id, request.user_id, write.journal)
        return len(request.writes)

    async def _journal(self, session_id: str, user_id: str, entry: JournalEntry) -> None:
        await self.db.session_journal.update_one(
            {"session_id": session_id, "seq": entry.seq},
            {"$setOnInsert": {"user_id": user_id, **asdict(entry), "created_at": datetime.now(UTC)}},
            upsert=True)

    @activity.defn
    async def commit_session_step(self, commit: SessionCommit) -> int:
        """Write one step's outcome; return how many events were new (0 on a full retry)."""
        fields = {"session_id": commit.session_id, "time": commit.time, "sequence": commit.sequence}
        log.info("commit start", extra={"fields": fields})
        analysis = await self._analysis_snapshot(commit.analysis_key) if commit.opened or commit.closed else None
        for position in commit.opened:
            await self.db.paper_trading_trades.update_one(
                {"session_id": commit.session_id, "trade_id": position["trade_id"]},
                {"$setOnInsert": open_trade_doc(commit, position, analysis)},
                upsert=True,
            )
        for trade in commit.closed:
            # $set of the same values is idempotent; the open row (if any) becomes the closed one.
            await self.db.paper_trading_trades.update_one(
                {"session_id": commit.session_id, "trade_id": trade["id"]},
                {"$set": closed_trade_fields(commit, trade, analysis),
                 "$setOnInsert": {"created_at": datetime.now(UTC)}},
                upsert=True,
            )
        for part in commit.partial_closes:
            # $addToSet of the same part is a no-op, so a retry adds nothing.
            await self.db.paper_trading_trades.update_one(
                {"session_id": commit.session_id, "trade_id": part["id"]},
                {"$addToSet": {"partial_closes": part}},
            )
        snapshot = account_doc(commit)
        try:
            # Only ever forward in market time, so a late retry cannot roll the account back.
            # A whole snapshot replaces the last (it is every field the row has): a third less
            # database CPU than $set of the same fields, on the write every step makes.
            await self.db.paper_trading_accounts.replace_one(
                {"session_id": commit.session_id, "time": {"$lte": commit.time}},
                {"session_id": commit.session_id, **snapshot, "updated_at": datetime.now(UTC)},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # a newer snapshot exists: the filter missed it and the upsert hit the unique key
        point = {"user_id": commit.user_id, "generation": commit.generation, **commit.account}
        try:
            # An insert costs the database less than an upsert, and almost every point is new.
            # committed_at is the first write's wall time (what decision-lag figures measure).
            await self.db.portfolio_history.insert_one(
                {"session_id": commit.session_id, "time": commit.time, **point, "committed_at": datetime.now(UTC)})
        except DuplicateKeyError:
            # A retry, or a reset's fresh account at the market time of the last candle: its point wins.
            await self.db.portfolio_history.update_one(
                {"session_id": commit.session_id, "time": commit.time}, {"$set": point})
        if commit.day_closed:
            await self.db.performance_metrics.update_one(
                {"session_id": commit.session_id, "date": commit.day_closed["date"]},
                {"$set": {"user_id": commit.user_id, "generation": commit.generation, **commit.day_closed}},
                upsert=True,
            )
        await self._ai_records(commit)
        published = await events.publish(self.db, trade_events(commit))
        log.info("commit end", extra={"fields": fields})
        return published

    async def _ai_records(self, commit: SessionCommit) -> None:
        """The candle's decision record (what Grok's part used), and an ``ai_signals`` row for each
        position opened on a decision Grok had a part in."""
        decision = commit.ai_decision
        if decision:
            await self.db.ai_decisions.update_one(
                {"decision_id": decision["decision_id"]},
                {"$setOnInsert": {**decision, "session_id": commit.session_id, "user_id": commit.user_id,
                                  "generation": commit.generation, "created_at": datetime.now(UTC)}},
                upsert=True)
        for decided in (commit.acted_on, commit.signal):
            ai = (decided or {}).get("ai")
            if not ai or not decided or not decided.get("opened"):
                continue
            for position in commit.opened:
                if position["symbol"] != decided["symbol"]:
                    continue
                await self.db.ai_signals.update_one(
                    {"signal_id": f"{commit.session_id}:{position['trade_id']}"},
                    {"$setOnInsert": {"user_id": commit.user_id, "session_id": commit.session_id,
                                      "trade_id": position["trade_id"], "symbol": decided["symbol"],
                                      "interval": decided["interval"], "open_time": decided["open_time"],
                                      "direction": decided["direction"], "confidence": decided["confidence"],
                                      "ai": ai, "created_at": datetime.now(UTC)}},
                    upsert=True)

    async def _analysis_snapshot(self, analysis_key: str | None) -> dict | None:
        if analysis_key is None:
            return None  # a manual order or close: no analysis decided it
        doc = await self.db.ai_analysis_results.find_one({"analysis_key": analysis_key})
        return {k: doc.get(k) for k in ANALYSIS_SNAPSHOT_FIELDS} if doc else None

    @activity.defn
    async def save_session_settings(self, record: SessionSettingsRecord) -> None:
        """Upsert the session's settings document (the same record twice writes the same values)."""
        await self.db.paper_trading_settings.update_one(
            {"session_id": record.session_id},
            {"$set": {
                "user_id": record.user_id, "status": record.status, "source": record.source,
                "symbols": list(record.symbols), "interval": record.interval,
                "engine_settings": record.engine_settings, "analysis_settings": record.analysis_settings,
                "analysis_settings_hash": record.analysis_settings_hash, "version": record.version,
                "generation": record.generation, "updated_at": datetime.now(UTC),
            }},
            upsert=True,
        )
        if record.version is not None:
            status = {"session_id": record.session_id, "status": record.status, "symbols": list(record.symbols),
                      "interval": record.interval, "generation": record.generation,
                      "entries_enabled": record.entries_enabled}
            await events.publish(self.db, [events.event_doc(
                events.BOT_STATUS_UPDATE, f"{record.session_id}:{record.version}", status, user_id=record.user_id)])

    @activity.defn
    async def latest_price(self, request: LatestPriceInput) -> LatestPrice:
        """The exchange's price when the session follows this worker's exchange, else the feed's
        latest price of the symbol, else the close of its newest stored candle."""
        if self.prices is not None and request.source == self.prices.source:
            found = await self._exchange_price(request)
            if found is not None:
                return found
        with bounded():
            doc = await self.db.market_prices.find_one({"source": request.source, "symbol": request.symbol})
            if doc is not None:
                return LatestPrice(float(doc["price"]), int(doc["time"]), "feed")
            candle = await self.db.market_data.find_one(
                {"symbol": request.symbol, "interval": request.interval}, sort=[("open_time", -1)]
            )
        if candle is None:
            raise ApplicationError(f"no price known for {request.symbol} from {request.source!r}",
                                   type=NO_PRICE, non_retryable=True)
        return LatestPrice(float(candle["close"]), int(candle["close_time"]), "candle")

    async def _exchange_price(self, request: LatestPriceInput) -> LatestPrice | None:
        """USDⓈ-M: the book ticker's mid at its transaction time; spot: the 24-hour ticker's last
        price at its close time. None when the exchange cannot answer (the caller falls back)."""
        assert self.prices is not None
        try:
            async with BinanceRestClient(self.prices.rest_url, futures_base_url=self.prices.futures_url,
                                         timeout_s=EXCHANGE_TIMEOUT_S) as exchange:
                if request.market == "futures":
                    book = await exchange.book_ticker(request.symbol, market="usdm")
                    if book.time is not None:
                        return LatestPrice(book.mid, book.time, "exchange book ticker")
                tickers = await exchange.ticker_24h(request.symbol)
        except ExchangeError as exc:
            log.warning("no price from the exchange; using the feed's",
                        extra={"fields": {"symbol": request.symbol, "error": str(exc)[:200]}})
            return None
        if not tickers:
            return None
        return LatestPrice(tickers[0].last_price, tickers[0].close_time, "exchange 24h ticker")
