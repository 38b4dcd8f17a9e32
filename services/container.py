"""Every use-case service of one process, built once from its clients: what an adapter (the REST
gateway, ``/ws``, MCP, Telegram) holds and calls."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client

from core.settings import Settings
from services.accounts import Accounts
from services.agent_grants import AgentGrants
from services.ai import AiAnalysis
from services.ai_chat import AiChat
from services.ai_reviews import AiReviews
from services.ai_training import AiTraining
from services.auth.kit import AuthServices
from services.auth.rate_limit import RateLimits
from services.auth.step_up import CodeCheck
from services.backtests import Backtests
from services.event_hub import EventHub
from services.exchange_symbols import ExchangeSymbols
from services.health import Health
from services.market import MarketData
from services.monitoring import Monitoring
from services.oauth import OAuthAuthorization
from services.paper import PaperTrading
from services.real_account import RealAccount
from services.real_orders import RealOrders
from services.real_protection import RealProtection
from services.real_session import RealSessions
from services.system import System
from services.tasks import Tasks
from services.telegram_links import TelegramLinks
from services.telegram_updates import TelegramUpdates
from services.tuning import Tuning
from services.two_factor import TwoFactor
from services.user_settings import UserSettings


@dataclass
class Services:
    settings: Settings
    temporal: Client
    mongo: AsyncMongoClient
    auth: AuthServices
    hub: EventHub
    accounts: Accounts
    agent_grants: AgentGrants
    oauth: OAuthAuthorization
    paper: PaperTrading
    backtests: Backtests
    market: MarketData
    monitoring: Monitoring
    exchange: ExchangeSymbols
    user_settings: UserSettings
    health: Health
    system: System
    tuning: Tuning
    real_orders: RealOrders
    real_account: RealAccount
    real_protection: RealProtection
    real_sessions: RealSessions
    two_factor: TwoFactor
    ai: AiAnalysis
    ai_chat: AiChat
    ai_reviews: AiReviews
    ai_training: AiTraining

    @property
    def db(self) -> AsyncDatabase:
        return self.mongo[self.settings.mongo_database]

    @cached_property
    def tasks(self) -> Tasks:
        """Backtests, training jobs and analyses as one list of tasks, through their own services."""
        return Tasks(self.backtests, self.ai_training, self.ai)

    @cached_property
    def telegram_links(self) -> TelegramLinks:
        return TelegramLinks(self.settings, self.db)

    @cached_property
    def telegram_updates(self) -> TelegramUpdates:
        """The Telegram bot's claimed updates and durable offset (only the bot process uses it)."""
        return TelegramUpdates(self.db)

    @classmethod
    def build(cls, settings: Settings, temporal: Client, mongo: AsyncMongoClient, auth: AuthServices,
              hub: EventHub) -> Services:
        db = mongo[settings.mongo_database]
        exchange = ExchangeSymbols(settings)
        paper = PaperTrading(settings, temporal, db, exchange)
        market = MarketData(settings, db)
        limits = RateLimits.build(settings, db)
        codes = CodeCheck(db, auth.keyring, limits)
        two_factor = TwoFactor(settings, db, auth, codes)
        master_key = auth.keyring.keys[auth.keyring.current_id]
        tuning = Tuning(settings, temporal, db, master_key, paper, two_factor)
        real_orders = RealOrders(settings, temporal, db, exchange, two_factor, master_key)
        real_account = RealAccount(settings, db, auth.keyring, exchange, real_orders)
        agent_grants = AgentGrants(settings, db, auth)
        return cls(
            settings=settings, temporal=temporal, mongo=mongo, auth=auth, hub=hub,
            accounts=Accounts(settings, db, auth, limits, codes), agent_grants=agent_grants,
            oauth=OAuthAuthorization(settings, db, agent_grants),
            paper=paper,
            backtests=Backtests(settings, temporal, db), market=market, exchange=exchange,
            monitoring=Monitoring(settings, temporal, db, paper, hub),
            user_settings=UserSettings(settings, db, auth, two_factor), health=Health(settings, temporal, db),
            system=System(settings),
            tuning=tuning, real_orders=real_orders,
            real_account=real_account, real_protection=RealProtection(db, real_orders, real_account),
            real_sessions=RealSessions(settings, temporal, db, exchange, paper, tuning, real_orders, two_factor),
            two_factor=two_factor, ai=AiAnalysis(settings, temporal, db),
            ai_chat=AiChat(settings, temporal, db, paper, market), ai_reviews=AiReviews(settings, temporal, db, tuning),
            ai_training=AiTraining(settings, temporal, db),
        )
