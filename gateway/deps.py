"""Shared FastAPI dependencies (``Annotated`` aliases used by every router)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client

from durabot.settings import Settings
from gateway.auth.services import AuthServices
from gateway.ws_hub import EventHub


@dataclass
class AppState:
    """What the lifespan builds once and every request shares."""

    settings: Settings
    temporal: Client
    mongo: AsyncMongoClient
    hub: EventHub
    auth: AuthServices | None = None

    @property
    def db(self) -> AsyncDatabase:
        return self.mongo[self.settings.mongo_database]


def get_state(request: Request) -> AppState:
    return request.app.state.durabot


State = Annotated[AppState, Depends(get_state)]


def get_app_settings(state: State) -> Settings:
    return state.settings


def get_temporal(state: State) -> Client:
    return state.temporal


def get_db(state: State) -> AsyncDatabase:
    return state.db


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
DbDep = Annotated[AsyncDatabase, Depends(get_db)]
