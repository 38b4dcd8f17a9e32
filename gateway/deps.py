"""Shared FastAPI dependencies (``Annotated`` aliases used by every router): the application layer's
services, and the ``Idempotency-Key`` header of writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from core.settings import Settings
from services.accounts import Accounts
from services.agent_grants import AgentGrants
from services.ai import AiAnalysis
from services.ai_chat import AiChat
from services.ai_reviews import AiReviews
from services.ai_training import AiTraining
from services.backtests import Backtests
from services.container import Services
from services.event_hub import EventHub
from services.exchange_symbols import ExchangeSymbols
from services.health import Health
from services.market import MarketData
from services.paper import PaperTrading
from services.real_account import RealAccount
from services.real_orders import RealOrders
from services.real_protection import RealProtection
from services.real_session import RealSessions
from services.system import System
from services.tuning import Tuning
from services.two_factor import TwoFactor
from services.user_settings import UserSettings


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def _settings(services: ServicesDep) -> Settings:
    return services.settings


def _accounts(services: ServicesDep) -> Accounts:
    return services.accounts


def _paper(services: ServicesDep) -> PaperTrading:
    return services.paper


def _backtests(services: ServicesDep) -> Backtests:
    return services.backtests


def _market(services: ServicesDep) -> MarketData:
    return services.market


def _exchange(services: ServicesDep) -> ExchangeSymbols:
    return services.exchange


def _user_settings(services: ServicesDep) -> UserSettings:
    return services.user_settings


def _real_orders(services: ServicesDep) -> RealOrders:
    return services.real_orders


def _real_account(services: ServicesDep) -> RealAccount:
    return services.real_account


def _real_protection(services: ServicesDep) -> RealProtection:
    return services.real_protection


def _real_sessions(services: ServicesDep) -> RealSessions:
    return services.real_sessions


def _tuning(services: ServicesDep) -> Tuning:
    return services.tuning


def _agent_grants(services: ServicesDep) -> AgentGrants:
    return services.agent_grants


def _two_factor(services: ServicesDep) -> TwoFactor:
    return services.two_factor


def _health(services: ServicesDep) -> Health:
    return services.health


def _system(services: ServicesDep) -> System:
    return services.system


def _hub(services: ServicesDep) -> EventHub:
    return services.hub


def _ai(services: ServicesDep) -> AiAnalysis:
    return services.ai


def _ai_chat(services: ServicesDep) -> AiChat:
    return services.ai_chat


def _ai_reviews(services: ServicesDep) -> AiReviews:
    return services.ai_reviews


def _ai_training(services: ServicesDep) -> AiTraining:
    return services.ai_training


SettingsDep = Annotated[Settings, Depends(_settings)]
AccountsDep = Annotated[Accounts, Depends(_accounts)]
PaperDep = Annotated[PaperTrading, Depends(_paper)]
BacktestsDep = Annotated[Backtests, Depends(_backtests)]
MarketDep = Annotated[MarketData, Depends(_market)]
ExchangeDep = Annotated[ExchangeSymbols, Depends(_exchange)]
UserSettingsDep = Annotated[UserSettings, Depends(_user_settings)]
HealthDep = Annotated[Health, Depends(_health)]
TuningDep = Annotated[Tuning, Depends(_tuning)]
RealOrdersDep = Annotated[RealOrders, Depends(_real_orders)]
RealAccountDep = Annotated[RealAccount, Depends(_real_account)]
RealProtectionDep = Annotated[RealProtection, Depends(_real_protection)]
RealSessionsDep = Annotated[RealSessions, Depends(_real_sessions)]
TwoFactorDep = Annotated[TwoFactor, Depends(_two_factor)]
AgentGrantsDep = Annotated[AgentGrants, Depends(_agent_grants)]
SystemDep = Annotated[System, Depends(_system)]
HubDep = Annotated[EventHub, Depends(_hub)]
AiDep = Annotated[AiAnalysis, Depends(_ai)]
AiChatDep = Annotated[AiChat, Depends(_ai_chat)]
AiReviewsDep = Annotated[AiReviews, Depends(_ai_reviews)]
AiTrainingDep = Annotated[AiTraining, Depends(_ai_training)]

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
    description="A unique key per intended action (8-128 of A-Z a-z 0-9 - _ . :). A repeat with the same "
                "key and body returns the first result and changes nothing; the same key with another body "
                "is refused (422). Required for orders, cancels, closes and reset.")]
