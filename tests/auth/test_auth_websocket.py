"""/ws authentication: a token in the query or an Auth message opens the account channels; a bad
or expired token closes the connection with 4001."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import websockets

from activities.events import ACCOUNT_TYPES
from services.auth.tokens import TOKEN_TYPES

ACCOUNT_CHANNEL = sorted(ACCOUNT_TYPES)[0]


def _ws_url(gateway, query: str = "") -> str:
    return gateway.settings.gateway_url.replace("http://", "ws://") + "/ws" + query


async def _subscribe_account(ws) -> dict:
    await ws.send(json.dumps({"type": "Subscribe", "channels": [ACCOUNT_CHANNEL]}))
    return json.loads(await ws.recv())


async def test_account_channels_need_a_token_in_the_first_message_or_the_query(gateway, sign_up):
    account = await sign_up()
    async with websockets.connect(_ws_url(gateway)) as ws:
        assert json.loads(await ws.recv())["type"] == "Connected"
        refused = await _subscribe_account(ws)
        assert refused["type"] == "Error" and refused["data"]["code"] == "auth_required"
        await ws.send(json.dumps({"type": "Auth", "token": account.access}))
        assert json.loads(await ws.recv()) == {"type": "Authenticated", "data": {"user_id": account.user_id}}
        assert (await _subscribe_account(ws))["type"] == "Subscribed"

    async with websockets.connect(_ws_url(gateway, f"?token={account.access}")) as ws:
        assert json.loads(await ws.recv())["type"] == "Connected"
        assert (await _subscribe_account(ws))["type"] == "Subscribed"
    assert account.access not in gateway.logs.getvalue()  # the query token is redacted in access logs


@pytest.mark.parametrize("how", ["query", "message"])
async def test_invalid_or_expired_tokens_close_with_4001(gateway, sign_up, how):
    account = await sign_up()
    keys = gateway.app.state.services.auth.tokens.keys
    claims = jwt.decode(account.access, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 60}, keys.private_key, algorithm="RS256",
                         headers={"kid": keys.kid, "typ": TOKEN_TYPES["access"]})
    for token, reason in ((expired, "token expired"), (account.refresh, "not an access token"),
                          ("garbage", "malformed token")):
        if how == "query":
            async with websockets.connect(_ws_url(gateway, f"?token={token}")) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
        else:
            async with websockets.connect(_ws_url(gateway)) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "Auth", "token": token}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await ws.recv()
        assert closed.value.rcvd.code == 4001, (reason, closed.value)
        assert closed.value.rcvd.reason == reason


async def test_a_logged_out_session_cannot_open_account_channels(gateway, sign_up):
    account = await sign_up()
    await gateway.http.post("/api/auth/logout", headers=account.headers)
    async with websockets.connect(_ws_url(gateway, f"?token={account.access}")) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 4001 and "session ended" in closed.value.rcvd.reason


async def test_another_users_token_on_an_authenticated_connection_closes_4003(gateway, sign_up):
    alice, bob = await sign_up(), await sign_up()
    async with websockets.connect(_ws_url(gateway, f"?token={alice.access}")) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "Auth", "token": bob.access}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd.code == 4003
