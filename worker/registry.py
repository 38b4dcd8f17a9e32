"""Which workflows and activities each task-queue role serves. Later capabilities add a line here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client

from activities.backtest_runs import BacktestActivities
from activities.binance.key_vault import MasterKeyring
from activities.grok import GrokActivities
from activities.market_feed import FeedConfig, MarketFeedActivities
from activities.market_reads import MarketReadActivities
from activities.real_orders import OrderActivities
from activities.real_session import RealSessionActivities
from activities.session_analysis import SessionAnalysisActivities
from activities.session_store import PriceSource, SessionStoreActivities
from activities.training import TrainingActivities
from activities.tuning_store import TuningActivities
from core.contracts import TASK_QUEUE_AI, TASK_QUEUE_MARKET, TASK_QUEUE_REAL, TASK_QUEUE_TRADING
from core.settings import Settings
from workflows.ai_analysis import AiAnalysisWorkflow
from workflows.ai_chat import AiChatWorkflow, AiReviewWorkflow
from workflows.backtest import BacktestWorkflow
from workflows.feed_recorder import FeedRecorderWorkflow
from workflows.market_feed import MarketFeedWorkflow
from workflows.order import OrderWorkflow
from workflows.real_session import RealSessionWorkflow
from workflows.system_probe import SystemProbeWorkflow
from workflows.trading_session import TradingSessionWorkflow
from workflows.training import TrainingWorkflow
from workflows.tuning import TuningWorkflow
from workflows.tuning_approval import TuningApprovalWorkflow


@dataclass(frozen=True)
class WorkerContext:
    """The clients activities are built with; one per worker process."""

    settings: Settings
    db: AsyncDatabase
    temporal: Client


_WORKFLOWS: dict[str, list[type]] = {
    TASK_QUEUE_TRADING: [SystemProbeWorkflow, FeedRecorderWorkflow, TradingSessionWorkflow, BacktestWorkflow,
                         TuningWorkflow, TuningApprovalWorkflow],
    TASK_QUEUE_MARKET: [MarketFeedWorkflow],
    TASK_QUEUE_AI: [AiAnalysisWorkflow, AiChatWorkflow, AiReviewWorkflow, TrainingWorkflow],
    TASK_QUEUE_REAL: [OrderWorkflow, RealSessionWorkflow],
}


def feed_config(settings: Settings) -> FeedConfig:
    usdm = settings.feed_market == "usdm"
    return FeedConfig(rest_url=settings.exchange_rest_url, futures_url=settings.exchange_futures_url,
                      ws_url=settings.exchange_futures_ws_url if usdm else settings.exchange_ws_url,
                      streams=settings.feed_stream_list, market=settings.feed_market,
                      initial_backfill=settings.feed_backfill_candles)


def workflows_for(role: str) -> Sequence[type]:
    return _WORKFLOWS.get(role, [])


def activities_for(role: str, ctx: WorkerContext) -> Sequence[Callable[..., Any]]:
    if role == TASK_QUEUE_TRADING:
        reads = MarketReadActivities(ctx.db)
        prices = PriceSource(ctx.settings.market_source, ctx.settings.exchange_rest_url,
                             ctx.settings.exchange_futures_url)
        analysis, store = SessionAnalysisActivities(ctx.db), SessionStoreActivities(ctx.db, prices)
        backtests = BacktestActivities(ctx.db, ctx.settings.data_dir / "candles")
        tuning = TuningActivities(ctx.db, ctx.temporal)
        return [reads.read_market_candles, reads.subscribe_feed, reads.unsubscribe_feed,
                analysis.analyze_candle, store.write_session_records, store.commit_session_step,
                store.save_session_settings, store.latest_price, store.funding_rate,
                backtests.open_backtest, backtests.mark_backtest, backtests.run_backtest_job,
                tuning.take_snapshot, tuning.apply_changes, tuning.record_proposal, tuning.rule_proposals]
    if role == TASK_QUEUE_MARKET:
        feed = MarketFeedActivities(ctx.db, ctx.temporal, feed_config(ctx.settings), SessionAnalysisActivities(ctx.db))
        return [feed.run_market_feed]
    if role == TASK_QUEUE_AI:
        grok = GrokActivities(ctx.db, ctx.settings)
        training = TrainingActivities(ctx.db)
        return [grok.ask_grok, grok.chat_grok, grok.review_trade,
                training.open_training, training.plan_training, training.run_training_fold,
                training.record_training_step, training.finish_training, training.mark_training]
    if role == TASK_QUEUE_REAL:
        keyring = MasterKeyring.from_settings(ctx.settings)
        orders = OrderActivities(ctx.db, ctx.settings, keyring)
        session = RealSessionActivities(ctx.db, ctx.settings, keyring, ctx.temporal)
        # A real session analyses candles and follows the feed as a paper session does (the same
        # activities, served here too, since a workflow's activities run on its own task queue).
        reads, analysis = MarketReadActivities(ctx.db), SessionAnalysisActivities(ctx.db)
        store = SessionStoreActivities(ctx.db, PriceSource(ctx.settings.market_source, ctx.settings.exchange_rest_url,
                                                           ctx.settings.exchange_futures_url))
        return [orders.submit_order, orders.lookup_order, orders.cancel_exchange_order, orders.record_order,
                session.read_exchange, session.prepare_account, session.sync_ledger, session.record_real_session,
                session.follow_user_stream,
                session.check_approval,
                reads.subscribe_feed, reads.unsubscribe_feed, analysis.analyze_candle, store.funding_rate]
    return []
