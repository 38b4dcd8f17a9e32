"""Backtest reports through /api/backtests on a real gateway, worker, Temporal and SecantusDB: the web
backtest given a settings document equals ``durabot backtest --config`` with the same document and
candles (the exported JSON and CSV are the CLI's bytes, the trades pages the report's trades); a
session's exported settings backtest unchanged; runs compare and delete (with their trades); every
bad request is a 422 ``{"detail": {"field", "reason"}}`` that records nothing."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import typer
from typer.testing import CliRunner

from core.settings_document import FORMAT
from durabot.backtest_cmd import register

from .conftest import BTC_ACCOUNT, CANDLES, DATASET, candles, store

PAIRS = ("ETHBTC", "LTCBTC")
FILES = [f"{s}-5m-2018-01.csv.gz" for s in PAIRS]
DOCUMENT = {"format": FORMAT, "version": 1, "market": "binance", "symbols": list(PAIRS), "interval": "5m",
            "engine": {"leverage": 3, "slippage_bps": 1.0}, "analysis": {"min_agree": 2}}
TRADE_FROM, TRADE_TO = 1515715200000, 1516060800000  # 2018-01-12, 2018-01-16 (UTC midnights)


def run_cli(*args: str):
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer from collapsing the app into one command
        """Unused."""

    return CliRunner().invoke(app, ["backtest", *args])


async def finished(http, headers, backtest_id: str, within_s: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        doc = (await http.get(f"/api/backtests/{backtest_id}", headers=headers)).json()
        if doc["status"] in ("completed", "failed", "cancelled"):
            return doc
        assert asyncio.get_running_loop().time() < deadline, doc
        await asyncio.sleep(0.2)


async def run_web(http, headers, body: dict[str, Any]) -> dict[str, Any]:
    started = await http.post("/api/backtests", headers=headers, json=body)
    assert started.status_code == 202, started.text
    doc = await finished(http, headers, started.json()["backtest_id"])
    assert doc["status"] == "completed", doc
    return doc


async def test_the_web_backtest_of_a_settings_document_is_the_clis(gateway, sign_up, tmp_path):
    alice = await sign_up()
    http, h = gateway.http, alice.headers
    config, out, trades_csv = tmp_path / "settings.json", tmp_path / "report.json", tmp_path / "trades.csv"
    config.write_text(json.dumps(DOCUMENT))
    result = await asyncio.to_thread(run_cli, "--config", str(config), *[a for f in FILES for a in
                                     ("--data", str(CANDLES / f))], "--timerange", "20180112-20180116",
                                     "--json", str(out), "--csv", str(trades_csv))
    assert result.exit_code == 0, result.output
    cli_report = json.loads(out.read_bytes())
    assert len(cli_report["trades"]) > 20 and {t["symbol"] for t in cli_report["trades"]} == set(PAIRS)

    doc = await run_web(http, h, {"settings": DOCUMENT, "datasets": FILES, "trade_from": TRADE_FROM,
                                  "trade_to": TRADE_TO})
    backtest_id = doc["backtest_id"]
    # The same trades, tables, metrics and parameters: the export is the CLI's --json, byte for byte.
    exported = await http.get(f"/api/backtests/{backtest_id}/export", headers=h, params={"format": "json"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    assert f'filename="backtest-{backtest_id}.json"' in exported.headers["content-disposition"]
    assert exported.content == out.read_bytes()
    report = doc["report"]
    for part in ("tables", "metrics", "parameters", "data"):
        assert report[part] == cli_report[part], part
    assert report["parameters"]["settings"]["engine"]["leverage"] == 3  # every parameter used, shown
    assert report["parameters"]["settings"]["symbols"] == list(PAIRS)
    assert doc["trades"] == cli_report["trades"][:100] and doc["trades_total"] == len(cli_report["trades"])
    assert set(doc["price_curves"]) == set(PAIRS) and doc["equity_curve"] == cli_report["equity_curve"]

    # The CSV holds exactly the report's trades: the CLI's bytes, one row per trade, every field exact.
    csv_reply = await http.get(f"/api/backtests/{backtest_id}/export", headers=h, params={"format": "csv"})
    assert csv_reply.status_code == 200 and csv_reply.headers["content-type"].startswith("text/csv")
    assert csv_reply.content == trades_csv.read_bytes()
    rows = list(csv.DictReader(io.StringIO(csv_reply.text)))
    assert len(rows) == len(cli_report["trades"])
    for row, trade in zip(rows, cli_report["trades"], strict=True):
        assert {k: row[k] for k in trade} == {k: v if isinstance(v, str) else repr(v) for k, v in trade.items()}

    # Paging walks every trade once, in order.
    paged: list[dict[str, Any]] = []
    while True:
        page = (await http.get(f"/api/backtests/{backtest_id}/trades", headers=h,
                               params={"limit": 7, "offset": len(paged)})).json()
        assert page["total"] == len(cli_report["trades"]) and page["offset"] == len(paged)
        paged += page["items"]
        if len(page["items"]) < 7:
            break
    assert paged == cli_report["trades"]


async def test_a_sessions_exported_settings_backtest_unchanged(gateway, sign_up):
    alice = await sign_up()
    http, h = gateway.http, alice.headers
    fresh = await http.get("/api/paper-trading/settings/export", headers=h)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["format"] == FORMAT and fresh.json()["engine"]["leverage"] == 10  # a new session's
    assert "attachment" in fresh.headers["content-disposition"]
    started = await http.post("/api/paper-trading/start", headers=h, json={
        "symbols": ["ETHBTC"], "interval": "5m", "basic": BTC_ACCOUNT, "strategy": {"min_agree": 2}})
    assert started.status_code == 200, started.text
    changed = await http.put("/api/paper-trading/basic-settings", headers=h, json={"take_profit_pct": 3.0})
    assert changed.status_code == 200, changed.text
    document = (await http.get("/api/paper-trading/settings/export", headers=h)).json()
    assert document["symbols"] == ["ETHBTC"] and document["interval"] == "5m"
    assert (document["engine"]["market"], document["engine"]["account_currency"]) == ("spot", "BTC")
    assert document["engine"]["take_profit_pct"] == 3.0 and document["engine"]["fill_price"] == "next_open"
    # The exchange's filters of the symbol travel with the settings: the backtest trades by them too.
    assert [s["symbol"] for s in document["engine"]["symbols"]] == ["ETHBTC"]
    assert document["analysis"]["min_agree"] == 2

    until = TRADE_FROM  # two days of the file: enough to trade, few to store below
    doc = await run_web(http, h, {"settings": document, "dataset": DATASET, "trade_to": until})
    assert doc["report"]["parameters"]["settings"] == document  # taken unchanged
    assert doc["settings"]["engine"]["market"] == "spot" and doc["report"]["metrics"]["trades"] > 0

    # Without a file: the stored candles of the document's symbols and interval, the same report when
    # they are the file's candles (the same anchor, the same trades).
    await store(gateway, [c for c in candles(10_000) if c.open_time < until])
    stored = await run_web(http, h, {"settings": document, "trade_to": until})
    assert stored["data"]["source"] == "market_data" and stored["data"]["symbols"] == ["ETHBTC"]
    exports = [(await http.get(f"/api/backtests/{d['backtest_id']}/export", headers=h)).content for d in (doc, stored)]
    assert exports[0] == exports[1]


async def test_runs_compare_and_delete_with_their_trades(gateway, sign_up):
    alice, bob = await sign_up(), await sign_up()
    http, h = gateway.http, alice.headers
    body = {"settings": DOCUMENT, "datasets": FILES, "trade_from": TRADE_FROM, "trade_to": 1515888000000}
    first = await run_web(http, h, body)
    second = await run_web(http, h, {**body, "settings": {**DOCUMENT, "engine": {"leverage": 5}}})
    ids = [first["backtest_id"], second["backtest_id"]]
    compared = await http.get("/api/backtests/compare", headers=h, params={"ids": ids})
    assert compared.status_code == 200, compared.text
    runs, differences = compared.json()["runs"], compared.json()["differences"]
    assert [r["backtest_id"] for r in runs] == ids
    assert runs[1]["metrics"] == second["report"]["metrics"] and runs[0]["per_pair"][-1]["symbol"] == "TOTAL"
    assert {"parameter": "settings.engine.leverage", "values": [3, 5]} in differences
    assert {"parameter": "settings.engine.slippage_bps", "values": [1.0, 0.0]} in differences
    assert all(d["parameter"].startswith("settings.engine.") for d in differences), differences
    assert (await http.get("/api/backtests/compare", headers=bob.headers, params={"ids": ids})).status_code == 404

    async def rows(backtest_id: str) -> int:
        return sum([len(row["trades"]) async for row in gateway.db.backtest_trades.find({"backtest_id": backtest_id})])

    assert await rows(ids[0]) == first["trades_total"] > 0
    assert (await http.delete(f"/api/backtests/{ids[0]}", headers=bob.headers)).status_code == 404
    deleted = await http.delete(f"/api/backtests/{ids[0]}", headers=h)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"backtest_id": ids[0], "deleted": True, "trades_deleted": first["trades_total"]}
    assert await rows(ids[0]) == 0 and await gateway.db.backtest_results.count_documents({"backtest_id": ids[0]}) == 0
    for path in ("", "/trades", "/export"):
        assert (await http.get(f"/api/backtests/{ids[0]}{path}", headers=h)).status_code == 404, path
    assert (await http.delete(f"/api/backtests/{ids[0]}", headers=h)).status_code == 404
    assert [b["backtest_id"] for b in (await http.get("/api/backtests", headers=h)).json()] == [ids[1]]
    assert await rows(ids[1]) == second["trades_total"]  # the other run keeps its trades


BAD: list[tuple[str, str, dict[str, Any], str | None, str]] = [
    ("post", "/api/backtests", {"settings": {**DOCUMENT, "engine": {"leverage": 0}}, "datasets": FILES},
     "settings.engine.leverage", "Leverage must be a whole number from 1 to 125x, got 0"),
    ("post", "/api/backtests", {"settings": {**DOCUMENT, "analysis": {"rsi": {"length": 1}}}, "datasets": FILES},
     "settings.analysis.rsi.length", "RSI length must be a whole number from 2 to 100 candles, got 1"),
    ("post", "/api/backtests", {"settings": {**DOCUMENT, "version": 9}, "datasets": FILES},
     "settings.version", "newer Durabot"),
    ("post", "/api/backtests", {"settings": {"symbols": ["ETHBTC"]}}, "settings.format", "must be 'durabot-settings'"),
    ("post", "/api/backtests", {"settings": DOCUMENT, "datasets": FILES[:1]}, "settings.symbols",
     "the settings trade ETHBTC, LTCBTC but the candles are of ETHBTC"),
    ("post", "/api/backtests", {"settings": DOCUMENT, "datasets": FILES, "engine_settings": {"leverage": 2}},
     "settings", "not both"),
    ("post", "/api/backtests", {"settings": {**DOCUMENT, "interval": "1h"}, "datasets": FILES}, "settings.interval",
     "the settings are for 1h candles, the candles are 5m"),
    ("post", "/api/backtests", {"datasets": [FILES[0], FILES[0]]}, "datasets", "two files of one symbol"),
    ("post", "/api/backtests", {"datasets": [FILES[0], "ALTBTC-1m-2017-11.csv.gz"]}, "datasets",
     "different intervals"),
    ("post", "/api/backtests", {"datasets": [FILES[0], "NOPE-5m-2018-01.csv.gz"]}, "datasets", "unknown dataset"),
    ("post", "/api/backtests", {"datasets": [FILES[0], "../x.csv.gz"]}, "datasets", "a file name under data/candles"),
    ("post", "/api/backtests", {"datasets": []}, "datasets", ""),
    ("post", "/api/backtests", {"dataset": DATASET, "datasets": FILES}, "dataset", "exactly one candle source"),
    ("get", "/api/backtests/compare?ids=abc", {}, "ids", ""),
    ("get", "/api/backtests/compare?ids=abc&ids=abc", {}, "ids", "2 to 10 different backtest IDs"),
    ("get", "/api/backtests/x/trades?limit=0", {}, "limit", ""),
    ("get", "/api/backtests/x/export?format=xlsx", {}, "format", ""),
]


async def test_bad_requests_are_422s_naming_the_field_and_record_nothing(gateway, sign_up):
    alice = await sign_up()
    http, h = gateway.http, alice.headers
    for method, path, body, field, reason in BAD:
        reply = await http.request(method.upper(), path, headers=h, **({"json": body} if body else {}))
        assert reply.status_code == 422, (path, body, reply.text)
        detail = reply.json()["detail"]
        assert detail["field"] == field and reason in detail["reason"], (path, body, detail)
    assert (await http.get("/api/backtests", headers=h)).json() == []
    assert await gateway.db.backtest_trades.count_documents({}) == 0
    # A report asked for before it exists is a 409, a failed run has none either.
    failed = await http.post("/api/backtests", headers=h, json={"dataset": DATASET, "trade_from": 2**45})
    assert failed.status_code == 202
    doc = await finished(http, h, failed.json()["backtest_id"])
    assert doc["status"] == "failed" and "empty time range" in doc["error"]
    for path in ("/trades", "/export"):
        reply = await http.get(f"/api/backtests/{doc['backtest_id']}{path}", headers=h)
        assert reply.status_code == 409 and "failed" in reply.json()["detail"]["reason"], reply.text
    compare = await http.get("/api/backtests/compare", headers=h, params={"ids": [doc["backtest_id"]] * 1 + ["b"]})
    assert compare.status_code == 404  # "b" is no backtest of hers
