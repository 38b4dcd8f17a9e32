"""Fixtures of the auth tests: a gateway on a real socket (real Temporal + SecantusDB), users, the sim."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from sim.exchange import SimExchangeServer
from tests.conftest import enrol_two_factor, registered_and_logged_in

PASSWORD = "correct horse battery staple"


@pytest.fixture
def auth_settings(settings, jwt_private_pem):
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem),
        "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000,
    })


@pytest.fixture
async def gateway(auth_settings, run_gateway) -> AsyncIterator[Any]:
    async with run_gateway(auth_settings) as gw:
        yield gw


@dataclass
class Account:
    user_id: str
    email: str
    access: str
    refresh: str
    session_id: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


SignUp = Callable[..., Awaitable[Account]]


@pytest.fixture
def sign_up(gateway: Any) -> SignUp:
    async def sign_up(email: str | None = None, password: str = PASSWORD, *, two_factor: bool = False) -> Account:
        """A new account, logged in; with ``two_factor``, enrolled (and so stepped up for 5 minutes)."""
        body = await registered_and_logged_in(gateway.http, password, email)
        account = Account(body["user_id"], body["email"], body["access_token"], body["refresh_token"],
                          body["session_id"], password)
        if two_factor:
            await enrol_two_factor(gateway.http, account.headers)
        return account

    return sign_up


@pytest.fixture
async def sim(start_sim) -> SimExchangeServer:
    return await start_sim(max_candles_per_series=600)


async def provision_sim_key(sim: SimExchangeServer, **restrictions: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        reply = await client.post("/sim/keys", json=restrictions)
    assert reply.status_code == 201, reply.text
    return reply.json()
