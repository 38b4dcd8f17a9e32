"""What the MCP server serves, held to its promises: at least 90 tools; every seed tool served or listed as not
served with its reason; the generated reference in docs equal to what is served; every tool described,
annotated, with an output schema; every write with a required idempotency key; no tool that takes or
returns a secret; no tool that confirms or approves; and every tool called by name in some test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from gateway.mcp import docs, tools
from gateway.mcp.catalog import SEED, SEED_COUNTS, NotServed
from gateway.mcp.registry import REGISTRY
from tests.mcp.conftest import mcp_client, mint_token, new_person

TESTS = Path(__file__).parent
SECRET_ARGUMENTS = re.compile(r"password|secret|totp|otp|token|recovery|api_key|passphrase|(^|_)code$")
SECRET_OUTPUTS = {"password", "password_hash", "api_secret", "secret", "access_token", "refresh_token", "token",
                  "token_hash", "totp_secret", "recovery_codes", "api_key"}


def property_names(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            found.add(name)
            found |= property_names(sub)
        for key, value in schema.items():
            if key != "properties":
                found |= property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= property_names(item)
    return found


def test_the_reference_in_docs_is_what_the_server_serves() -> None:
    assert docs.DOC.read_text() == docs.render(), "docs/mcp-tools.md is stale: run python -m gateway.mcp.docs"


def test_every_seed_tool_is_served_or_listed_with_its_reason() -> None:
    tools.load()
    assert len(REGISTRY) >= 90, f"only {len(REGISTRY)} tools served"
    for category, count in SEED_COUNTS.items():
        assert len(SEED.get(category, {})) == count, f"{category}: the seed had {count} tools"
    for category, fates in SEED.items():
        for seed_name, fate in fates.items():
            if isinstance(fate, NotServed):
                assert fate.name == seed_name and fate.category == category
                assert fate.reason and fate.human_path and fate.name not in REGISTRY
            else:
                assert fate in REGISTRY, f"seed tool {seed_name} is said to be served as {fate}, which is not served"
                assert REGISTRY[fate].category == category, (seed_name, fate)


def test_every_tool_is_called_by_name_in_a_test() -> None:
    tools.load()
    text = "\n".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name)
    missing = [name for name in REGISTRY if f'"{name}"' not in text]
    assert not missing, f"tools no test calls: {missing}"


@pytest.fixture
def catalog_settings(settings, jwt_private_pem):
    return settings.model_copy(update={"jwt_private_key": SecretStr(jwt_private_pem),
                                       "master_key": SecretStr(new_master_key_text())})


async def test_every_served_tool_keeps_the_rules(catalog_settings, run_gateway) -> None:
    async with run_gateway(catalog_settings) as gw:
        token = await mint_token(gw, await new_person(gw), "public")
        async with mcp_client(catalog_settings.mcp_url, token) as client:
            listed = (await client.list_tools()).tools
    assert {t.name for t in listed} == set(REGISTRY)
    for served in listed:
        spec = REGISTRY[served.name]
        assert served.description and served.output_schema, served.name
        assert served.meta and served.meta.get("durabot/tier") == spec.tier, served.name
        hints = served.annotations
        assert hints is not None and hints.read_only_hint == spec.read_only, served.name
        if spec.read_only:
            assert not hints.destructive_hint, served.name
        else:
            assert "idempotency_key" in served.input_schema.get("required", []), \
                f"{served.name} writes without a required idempotency_key"
        arguments = set(served.input_schema.get("properties", {})) - {"idempotency_key"}
        assert not [a for a in arguments if SECRET_ARGUMENTS.search(a)], (served.name, arguments)
        assert not property_names(served.output_schema) & SECRET_OUTPUTS, served.name
        assert not re.match(r"^(confirm|approve)", served.name), f"{served.name}: no tool confirms or approves"
