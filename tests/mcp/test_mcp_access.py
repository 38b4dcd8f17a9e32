"""Who may call the MCP server, and how each refusal looks to a client: no token, an expired token, a token
for another audience (a gateway access token, a token minted for another MCP server), a revoked grant,
a tier below the tool's, too many calls; DNS-rebinding Origin/Host checks; the audit of every call; and
the MCP Inspector's CLI, from npm, against the running server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from services.auth.tokens import token_digest
from tests.conftest import free_port
from tests.mcp.conftest import error_text, mcp_client, mint_token, new_person, raw_call, structured

INSPECTOR_DIR = Path(__file__).parent / "inspector"


@pytest.fixture
def access_settings(settings, jwt_private_pem):
    return settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "mcp_calls_per_minute": 5})


def challenge(reply: httpx.Response) -> str:
    return reply.headers.get("www-authenticate", "")


async def test_each_refusal_has_its_status_and_challenge(access_settings, run_gateway, jwt_private_pem) -> None:
    async with run_gateway(access_settings) as gw:
        url = access_settings.mcp_url
        owner = await new_person(gw)
        token = await mint_token(gw, owner, "authenticated")
        metadata_url = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")

        # The resource metadata names the gateway as the authorization server and every tier's scope.
        async with httpx.AsyncClient() as http:
            metadata = (await http.get(metadata_url)).json()
        assert metadata["resource"] == url
        assert metadata["authorization_servers"] == [access_settings.gateway_url]
        assert metadata["scopes_supported"] == ["mcp:public", "mcp:authenticated", "mcp:sensitive", "mcp:critical"]

        # No token, a malformed one, and the person's own gateway access token (another audience): 401.
        for bearer in (None, "not-a-token", owner.access):
            reply = await raw_call(url, bearer, "ping")
            assert reply.status_code == 401, reply.text
            assert f'resource_metadata="{metadata_url}"' in challenge(reply)

        # A valid token passes; a tool above its tier is 403 insufficient_scope naming the scope needed.
        assert (await raw_call(url, token, "ping")).status_code == 200
        reply = await raw_call(url, token, "add_symbol", {"symbol": "ETHUSDT", "idempotency_key": "key-12345678"})
        assert reply.status_code == 403, reply.text
        assert reply.json()["error"] == "insufficient_scope"
        assert 'error="insufficient_scope"' in challenge(reply)
        assert 'scope="mcp:public mcp:authenticated mcp:sensitive"' in challenge(reply)

        # An agent token opens nothing on the REST side: agents cannot mint, list or revoke grants.
        for method, path in (("GET", "/api/agent-tokens"), ("POST", "/api/agent-tokens"),
                             ("GET", "/api/paper-trading/status")):
            reply = await gw.http.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                          json={"label": "x", "tier": "critical"} if method == "POST" else None)
            assert reply.status_code == 401, (path, reply.text)

        # Expired: the grant's own expiry passed (the record is read on every call) …
        expiring = await mint_token(gw, owner, "public", label="expiring")
        grant_id = jwt.decode(expiring, options={"verify_signature": False})["jti"]
        assert (await raw_call(url, expiring, "ping")).status_code == 200
        await gw.db.agent_grants.update_one({"grant_id": grant_id},
                                            {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
        assert (await raw_call(url, expiring, "ping")).status_code == 401
        # … and a token whose own `exp` passed, even with a live record that matches it.
        claims = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
        stale = jwt.encode({**claims, "exp": int(time.time()) - 60, "jti": grant_id}, jwt_private_pem,
                           algorithm="RS256", headers={"kid": header["kid"], "typ": "at+jwt"})
        await gw.db.agent_grants.update_one({"grant_id": grant_id}, {"$set": {
            "token_hash": token_digest(stale), "expires_at": datetime.now(UTC) + timedelta(days=1)}})
        assert (await raw_call(url, stale, "ping")).status_code == 401

        # Revoked: refused from the next call on.
        revocable = await mint_token(gw, owner, "critical", label="revocable")
        assert (await raw_call(url, revocable, "ping")).status_code == 200
        revoked_id = jwt.decode(revocable, options={"verify_signature": False})["jti"]
        reply = await gw.http.delete(f"/api/agent-tokens/{revoked_id}", headers=owner.headers)
        assert reply.status_code == 200 and reply.json()["active"] is False, reply.text
        assert (await raw_call(url, revocable, "ping")).status_code == 401

        # Another user's grant cannot be revoked (or even seen) by this one.
        other = await new_person(gw)
        reply = await gw.http.delete(f"/api/agent-tokens/{grant_id}", headers=other.headers)
        assert reply.status_code == 404
        assert all(g["grant_id"] != grant_id for g in (await gw.http.get("/api/agent-tokens",
                                                                           headers=other.headers)).json())

        # Over the per-token call limit (5 a minute here): 429 with Retry-After; another token is unaffected.
        limited = await mint_token(gw, owner, "public", label="limited")
        statuses = [(await raw_call(url, limited, "ping")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        reply = await raw_call(url, limited, "ping")
        assert reply.status_code == 429 and int(reply.headers["retry-after"]) >= 1
        fresh = await mint_token(gw, owner, "public", label="fresh")
        assert (await raw_call(url, fresh, "ping")).status_code == 200

        # DNS rebinding: a foreign Origin or Host is refused before anything runs.
        assert (await raw_call(url, fresh, "ping", headers={"Origin": "http://evil.example"})).status_code == 403
        assert (await raw_call(url, fresh, "ping", headers={"Host": "evil.example"})).status_code in (403, 421)


async def test_a_token_for_another_mcp_server_is_refused(access_settings, run_gateway) -> None:
    """Two gateways with their own MCP servers: a token minted for one is not accepted by the other (aud)."""
    other_settings = access_settings.model_copy(update={"gateway_port": free_port(), "mcp_port": free_port()})
    async with run_gateway(access_settings) as first, run_gateway(other_settings) as second:
        owner = await new_person(first)
        token = await mint_token(first, owner, "critical")
        assert (await raw_call(access_settings.mcp_url, token, "ping")).status_code == 200
        reply = await raw_call(other_settings.mcp_url, token, "ping")
        assert reply.status_code == 401, reply.text
        assert second.settings.mcp_url != first.settings.mcp_url


async def test_minting_needs_a_fresh_step_up_and_valid_terms(access_settings, run_gateway) -> None:
    async with run_gateway(access_settings) as gw:
        from tests.conftest import registered_and_logged_in
        body = await registered_and_logged_in(gw.http, "correct horse battery staple")
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        terms = {"label": "my agent", "tier": "public", "expires_in_days": 7}
        reply = await gw.http.post("/api/agent-tokens", headers=headers, json=terms)
        assert reply.status_code == 403 and reply.json()["step_up"] == "enrol", reply.text
        owner = await new_person(gw)
        for bad in ({**terms, "tier": "root"}, {**terms, "expires_in_days": 0}, {**terms, "label": ""},
                    {**terms, "expires_in_days": 400}, {**terms, "label": "<script>"}):
            reply = await gw.http.post("/api/agent-tokens", headers=owner.headers, json=bad)
            assert reply.status_code == 422, (bad, reply.text)
        assert await gw.db.agent_grants.count_documents({"user_id": owner.user_id}) == 0
        reply = await gw.http.post("/api/agent-tokens", headers=owner.headers, json=terms)
        assert reply.status_code == 201, reply.text
        minted = reply.json()
        assert minted["mcp_url"] == access_settings.mcp_url and minted["grant"]["tier"] == "public"
        # Only the token's hash is kept, and listing never shows a token.
        stored = await gw.db.agent_grants.find_one({"grant_id": minted["grant"]["grant_id"]})
        assert stored["token_hash"] == token_digest(minted["access_token"])
        assert minted["access_token"] not in json.dumps(stored, default=str)
        listed = (await gw.http.get("/api/agent-tokens", headers=owner.headers)).text
        assert minted["access_token"] not in listed and "token_hash" not in listed


async def test_every_call_is_audited_without_its_arguments(access_settings, run_gateway) -> None:
    async with run_gateway(access_settings) as gw:
        owner = await new_person(gw)
        token = await mint_token(gw, owner, "authenticated")
        async with mcp_client(access_settings.mcp_url, token) as client:
            assert structured(await client.call_tool("get_access_info", {}))["tier"] == "authenticated"
            failed = await client.call_tool("get_price", {"symbol": "SECRETVALUEXYZ"})
            assert "not found" in error_text(failed)
            assert (await client.call_tool("no_such_tool", {})).is_error
        entries = [e async for e in gw.db.mcp_audit.find({"user_id": owner.user_id}, {"_id": 0}).sort("at", 1)]
        by_tool = {e["tool"]: e for e in entries}
        assert by_tool["get_access_info"]["outcome"] == "ok" and by_tool["get_access_info"]["tier"] == "public"
        assert by_tool["get_price"]["outcome"] == "NotFound"
        assert by_tool["get_price"]["arguments"] == ["symbol"]
        assert "SECRETVALUEXYZ" not in json.dumps(entries, default=str)
        assert "SECRETVALUEXYZ" not in gw.logs.getvalue()
        assert all(e["ms"] >= 0 and e["grant_id"].startswith("grant_") for e in entries)


def _inspector() -> Path:
    """The MCP Inspector from npm, installed once from its lock file."""
    binary = INSPECTOR_DIR / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        npm = shutil.which("npm")
        assert npm, "the MCP Inspector test needs Node.js with npm"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=INSPECTOR_DIR, check=True,
                       timeout=600)
    return binary


async def _inspect(*args: str) -> tuple[int, str]:
    binary = await asyncio.to_thread(_inspector)
    proc = await asyncio.create_subprocess_exec(str(binary), "--cli", *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, cwd=INSPECTOR_DIR)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_the_mcp_inspector_cli_lists_tools_and_calls_a_public_tool(access_settings, run_gateway) -> None:
    async with run_gateway(access_settings) as gw:
        url = access_settings.mcp_url
        token = await mint_token(gw, await new_person(gw), "public")
        auth = f"Authorization: Bearer {token}"
        code, out = await _inspect(url, "--transport", "http", "--method", "tools/list")
        assert code == 3, out  # the Inspector's "authorization required"
        code, out = await _inspect(url, "--transport", "http", "--header", auth, "--method", "tools/list")
        assert code == 0, out
        listing, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
        listed = {tool["name"] for tool in listing["tools"]}
        assert {"ping", "get_health", "get_market_prices"} <= listed
        code, out = await _inspect(url, "--transport", "http", "--header", auth, "--method", "tools/call",
                                   "--tool-name", "ping")
        assert code == 0, out
        assert '"pong": true' in out.replace('"pong":true', '"pong": true')


async def test_resources_serve_candles_and_the_account_summary_by_tier(access_settings, run_gateway) -> None:
    from mcp.shared.exceptions import MCPError

    async with run_gateway(access_settings) as gw:
        owner = await new_person(gw)
        public = await mint_token(gw, owner, "public", label="public")
        reader = await mint_token(gw, owner, "authenticated", label="reader")
        async with mcp_client(access_settings.mcp_url, public) as client:
            templates = (await client.list_resource_templates()).resource_templates
            assert {t.uri_template for t in templates} >= {"durabot://market/candles/{symbol}/{timeframe}"}
            listed = {str(r.uri) for r in (await client.list_resources()).resources}
            assert "durabot://account/summary" in listed
            with pytest.raises(MCPError, match="forbidden"):
                await client.read_resource("durabot://account/summary")
            with pytest.raises(MCPError, match="rejected"):
                await client.read_resource("durabot://market/candles/BTCUSDT/7m")
        async with mcp_client(access_settings.mcp_url, reader) as client:
            summary = json.loads((await client.read_resource("durabot://account/summary")).contents[0].text)
            assert summary["status"] == "new" and summary["positions"] == []
            assert summary["account"]["equity"] > 0 and summary["account"]["open_positions"] == 0
