"""MongoDB: the client, and the collections and indexes of DESIGN §5, created idempotently.

Every collection has a natural unique key so that a retried activity never writes twice.
TTLs run on wall-clock fields (``stored_at``, ``created_at``, ``at``), never on candle time.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid

DAY_S = 86_400
# How long one group of operations of a session's activity may wait for MongoDB. Short on purpose:
# a session's local activities hold its workflow task while they run, so an outage must fail them
# fast; the session then says so and tries again on a timer, answering writes meanwhile.
ATTEMPT_S = 3.0


def bounded(seconds: float = ATTEMPT_S) -> AbstractContextManager[None]:
    """A deadline for the MongoDB operations inside the ``with`` block (pymongo's CSOT)."""
    return pymongo.timeout(seconds)


Keys = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    unique: tuple[Keys, ...] = ()
    indexes: tuple[Keys, ...] = ()
    ttl: tuple[str, int] | None = None  # (wall-clock field, seconds)
    extra: tuple[IndexModel, ...] = field(default_factory=tuple)


A, D = ASCENDING, DESCENDING

COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec("users", ((("user_id", A),), (("email", A),))),
    CollectionSpec("paper_trading_accounts", ((("session_id", A),),), ((("user_id", A),),)),
    CollectionSpec("paper_trading_trades", ((("session_id", A), ("trade_id", A)),),
                   ((("user_id", A), ("status", A), ("exit_time", D)),)),
    CollectionSpec("paper_trading_settings", ((("session_id", A),),), ((("user_id", A),),)),
    CollectionSpec("trades", ((("client_order_id", A),),), ((("user_id", A), ("created_at", D)),)),
    CollectionSpec("positions", ((("user_id", A), ("symbol", A)),)),
    CollectionSpec("strategy_configs", ((("user_id", A), ("name", A)),)),
    CollectionSpec("market_data", ((("symbol", A), ("interval", A), ("open_time", A)),),
                   ttl=("stored_at", 90 * DAY_S)),
    CollectionSpec("portfolio_history", ((("session_id", A), ("time", A)),), ((("user_id", A), ("time", D)),)),
    CollectionSpec("ai_analysis_results", ((("analysis_key", A),),),
                   ((("symbol", A), ("interval", A), ("open_time", D)),), ttl=("created_at", 30 * DAY_S)),
    CollectionSpec("ai_signals", ((("signal_id", A),),), ((("user_id", A), ("created_at", D)),)),
    # Every Grok call that reported usage (one per attempt), and each day's spend per user and in all.
    CollectionSpec("ai_usage", ((("call_id", A),),), ((("user_id", A), ("day", A)),),
                   ttl=("created_at", 400 * DAY_S)),
    CollectionSpec("ai_spend", ((("scope", A), ("day", A)),), ttl=("created_at", 400 * DAY_S)),
    # What each candle's decision of a session with Grok's part used (the answer, or the fallback and
    # why): a backtest replays them to make the same trades.
    CollectionSpec("ai_decisions", ((("decision_id", A),),),
                   ((("session_id", A), ("symbol", A), ("interval", A), ("open_time", A)),),
                   ttl=("created_at", 180 * DAY_S)),
    # Grok's latest review of each closed paper trade (and the proposals its suggestions became).
    CollectionSpec("ai_trade_reviews", ((("review_id", A),),), ((("user_id", A), ("created_at", D)),)),
    # Grok's circuit breaker per model, shared by every worker.
    CollectionSpec("ai_breakers", ((("model", A),),)),
    CollectionSpec("performance_metrics", ((("session_id", A), ("date", A)),)),
    CollectionSpec("audit_logs", ((("event_id", A),),), ((("user_id", A), ("at", D)),), ttl=("at", 180 * DAY_S)),
    CollectionSpec("monitoring_alerts", ((("alert_id", A),),), ((("created_at", D),),)),
    CollectionSpec("risk_metrics", ((("session_id", A), ("time", A)),)),
    CollectionSpec("system_config", ((("key", A),),)),
    CollectionSpec("sessions", ((("session_id", A),),), ((("user_id", A),),),
                   extra=(IndexModel([("expires_at", A)], expireAfterSeconds=0, name="expires_at_ttl"),)),
    # The code step of a two-factor login: its challenge (hashed) lives until it is used or expires.
    CollectionSpec("login_challenges", ((("challenge_hash", A),),),
                   extra=(IndexModel([("expires_at", A)], expireAfterSeconds=0, name="expires_at_ttl"),)),
    # Rate-limit hits shared by every gateway process (keys hashed), each gone once its window passed.
    CollectionSpec("rate_limit_hits", ((("hit_id", A),),), ((("key", A), ("at", A)),),
                   extra=(IndexModel([("expires_at", A)], expireAfterSeconds=0, name="expires_at_ttl"),)),
    CollectionSpec("notifications", ((("notification_id", A),),), ((("user_id", A), ("created_at", D)),),
                   ttl=("created_at", 7 * DAY_S)),
    CollectionSpec("api_keys", ((("user_id", A), ("key_id", A)),)),
    # Browser web-push endpoints of each user (settings): one per browser, owned by one user.
    CollectionSpec("push_subscriptions", ((("user_id", A), ("subscription_id", A)), (("user_id", A), ("endpoint", A)))),
    # Price-model training jobs: listed per user, and a user's latest model per stream served.
    CollectionSpec("training_jobs", ((("job_id", A),),), ((("user_id", A), ("created_at", D)),
                                                          (("user_id", A), ("symbol", A), ("interval", A),
                                                           ("finished_at", D)))),
    CollectionSpec("backtest_results", ((("backtest_id", A),),), ((("user_id", A), ("created_at", D)),)),
    # Every trade of a backtest's run, in order, 500 to a document: paged and exported apart from the report.
    CollectionSpec("backtest_trades", ((("backtest_id", A), ("run_id", A), ("chunk", A)),)),
    # Self-tuning: every proposal's status (written through by its workflow) and settings snapshots.
    CollectionSpec("tuning_proposals", ((("proposal_id", A),),), ((("user_id", A), ("number", D)),)),
    CollectionSpec("settings_snapshots", ((("snapshot_id", A),),), ((("user_id", A), ("taken_at_ms", D)),)),
    # Binance rate-limit gates shared by every worker: one per exchange IP (weight), one per API key (orders).
    CollectionSpec("exchange_gates", ((("gate_id", A),),)),
    # Real orders, written through by each OrderWorkflow (the workflow's state is the truth).
    # Real sessions' status (written through by the workflow) and their ledger of the exchange's
    # records: fills by trade ID, income (fees, funding, realized profit) by transaction ID.
    CollectionSpec("real_sessions", ((("session_id", A),),), ((("user_id", A),),)),
    CollectionSpec("real_ledger", ((("user_id", A), ("entry_id", A)),),
                   ((("user_id", A), ("kind", A), ("symbol", A), ("trade_id", D)),
                    (("user_id", A), ("kind", A), ("time_ms", D)),
                    # Every sync asks which symbols the income names with a fee (their fills are fetched too).
                    (("user_id", A), ("kind", A), ("income_type", A), ("symbol", A)))),
    CollectionSpec("real_orders", ((("user_id", A), ("order_id", A)),), ((("user_id", A), ("created_at_ms", D)),)),
    # MCP access: each agent token or OAuth grant (only its token's SHA-256 is kept), and every tool call.
    CollectionSpec("agent_grants", ((("grant_id", A),), (("token_hash", A),)), ((("user_id", A), ("created_at", D)),)),
    CollectionSpec("mcp_audit", ((("call_id", A),),), ((("user_id", A), ("at", D)),), ttl=("at", 180 * DAY_S)),
    # The MCP authorization server: registered clients (RFC 7591), authorization requests waiting for the
    # consent page, and their one-use codes (kept a while past expiry, so a replay still revokes its grant).
    CollectionSpec("oauth_clients", ((("client_id", A),),)),
    CollectionSpec("oauth_requests", ((("request_id", A),),),
                   extra=(IndexModel([("purge_at", A)], expireAfterSeconds=0, name="purge_at_ttl"),)),
    CollectionSpec("oauth_codes", ((("code_hash", A),),),
                   extra=(IndexModel([("purge_at", A)], expireAfterSeconds=0, name="purge_at_ttl"),)),
    # The event bus: workers write, the gateway follows a change stream and fans out on /ws.
    CollectionSpec("events", ((("event_key", A),),), ((("user_id", A), ("created_at", D)),),
                   ttl=("created_at", 2 * DAY_S)),
    # The feed's latest price per symbol (market time), for /api/prices and between-candle fills.
    CollectionSpec("market_prices", ((("source", A), ("symbol", A)),)),
    # Every write a trading session applied, in order (its journal); the session keeps the recent ones.
    CollectionSpec("session_journal", ((("session_id", A), ("seq", A)),), ((("user_id", A), ("created_at", D)),),
                   ttl=("created_at", 180 * DAY_S)),
    # Telegram: each link (one per user, one per Telegram user), one-time link codes (hash only, kept a
    # day past expiry so a replay reads as reused), and the bot's claimed update IDs and durable offset.
    CollectionSpec("telegram_links", ((("user_id", A),), (("telegram_user_id", A),)), ((("chat_id", A),),)),
    CollectionSpec("telegram_link_codes", ((("code_hash", A),),), ((("user_id", A),),),
                   extra=(IndexModel([("purge_at", A)], expireAfterSeconds=0, name="purge_at_ttl"),)),
    CollectionSpec("telegram_updates", ((("bot_id", A), ("update_id", A)),), ttl=("claimed_at", 7 * DAY_S)),
    CollectionSpec("telegram_offsets", ((("bot_id", A),),)),
    # Which workflows the market feed signals on each closed candle.
    CollectionSpec("feed_subscriptions", ((("source", A), ("symbol", A), ("interval", A), ("workflow_id", A)),),
                   ((("workflow_id", A),),)),
)


def _index_name(keys: Keys, suffix: str) -> str:
    return "_".join(f"{k}_{d}" for k, d in keys) + suffix


def index_models(spec: CollectionSpec) -> list[IndexModel]:
    models = [IndexModel(list(k), unique=True, name=_index_name(k, "_uniq")) for k in spec.unique]
    models += [IndexModel(list(k), name=_index_name(k, "")) for k in spec.indexes]
    if spec.ttl:
        fld, seconds = spec.ttl
        models.append(IndexModel([(fld, A)], expireAfterSeconds=seconds, name=f"{fld}_ttl"))
    models.extend(spec.extra)
    return models


async def ensure_schema(db: AsyncDatabase) -> list[str]:
    """Create missing collections and indexes. Safe to run from every process at every start."""
    existing = set(await db.list_collection_names())
    created: list[str] = []
    for spec in COLLECTIONS:
        if spec.name not in existing:
            try:
                await db.create_collection(spec.name)
                created.append(spec.name)
            except CollectionInvalid:
                pass  # another process created it between our list and our create
        await db[spec.name].create_indexes(index_models(spec))
    return created

