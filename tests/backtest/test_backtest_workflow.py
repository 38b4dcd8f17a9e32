"""BacktestWorkflow end to end on the real Temporal and SecantusDB: the stored report equals
``run_backtest`` run directly, from a data file or from stored market_data, and for several symbols
``run_multi_backtest``; bad requests fail at once with their reason and a failed record; a worker
stopped mid-run hands the job to another and the backtest completes once; a cancel reaches the
running job and marks it cancelled."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from activities.backtest_runs import REPORT_FIELDS
from activities.market_store import store_candles
from core.backtest_contracts import (
    PHASES,
    STATUS_CANCELLED,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_RUNNING,
    BacktestInput,
    MarketDataRange,
)
from services.errors import NotFound
from trading.analysis import AnalysisSettings, compute_signal_series
from trading.backtest_multi import run_multi_backtest
from trading.backtest_report import downsample
from trading.settings import EngineSettings
from workflows.backtest import BacktestWorkflow

from .conftest import (
    ANALYSIS,
    canonical,
    dataset,
    direct_backtest,
    from_anchor,
    ms,
    new_id,
    recorded_changes,
    trades_json,
    wait_doc,
    write_tiled,
)

FILE = "BTCUSDT-5m-2023-01.csv.gz"
REPORT = [f for f in REPORT_FIELDS if f not in ("error", "phase", "started_at", "finished_at", "attempt")]


async def stored_trades(rig, doc: dict) -> list[dict]:
    rows = rig.db.backtest_trades.find({"backtest_id": doc["backtest_id"], "run_id": doc["run_id"]}).sort("chunk", 1)
    return [t async for row in rows for t in row["trades"]]


async def assert_report_equals(rig, doc: dict, direct) -> None:
    assert doc["status"] == STATUS_COMPLETED
    assert canonical(await stored_trades(rig, doc)) == trades_json(direct.trades)
    assert doc["trades_total"] == len(direct.trades) and doc["report"]["metrics"]["trades"] == len(direct.trades)
    times, equity = downsample(direct.close_times, direct.equity)
    assert doc["equity_curve"] == {"close_times": times, "equity": equity, "points_of": len(direct.equity)}
    assert len(equity) <= 1000 and equity[-1] == direct.equity[-1]
    assert doc["metrics"] == direct.metrics
    assert doc["summary"]["final_equity"] == direct.equity[-1]
    assert doc["candles_in_position"] == direct.candles_in_position
    assert doc["entries_rejected"] == direct.entries_rejected


async def test_dataset_backtest_stores_the_direct_result_and_reports_phases(rig):
    request = BacktestInput(new_id(), "u1", dataset=FILE, engine_settings={"slippage_bps": 1.0},
                            analysis_settings=ANALYSIS, warmup_from=ms("2023-01-02T16:45"),
                            trade_from=ms("2023-01-05T00:00"), trade_to=ms("2023-01-20T00:00"))
    direct = direct_backtest(dataset(FILE), request)
    assert len(direct.trades) > 20 and len(direct.equity) > 1000  # entries, exits and a real downsample
    async with rig.worker(), recorded_changes(rig.db) as changes:
        handle = await rig.start(request)
        summary = await handle.result()
        progress = await handle.query(BacktestWorkflow.progress)
    assert (summary.trades, summary.final_equity) == (len(direct.trades), direct.equity[-1])
    assert summary.candles_traded == len(direct.close_times)
    assert (progress.status, progress.fraction) == (STATUS_COMPLETED, 1.0)
    doc = await rig.doc(request.backtest_id)
    assert doc is not None
    await assert_report_equals(rig, doc, direct)
    assert doc["data"]["source"] == "dataset" and doc["data"]["anchor"] == request.warmup_from
    assert doc["settings"]["engine"]["slippage_bps"] == 1.0 and doc["settings"]["analysis"]["min_agree"] == 2
    assert doc["started_at"] <= doc["finished_at"] and doc["progress"] == 1.0 and doc["attempt"] == 1
    statuses = [c["status"] for c in changes if "status" in c]
    phases = [c["phase"] for c in changes if c.get("phase")]
    assert statuses[0] == "queued" and STATUS_RUNNING in statuses and statuses[-1] == STATUS_COMPLETED
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == list(PHASES)

    # A completed backtest ID is used up: running it again returns the stored result, recomputes nothing.
    async with rig.worker():
        again = await (await rig.start(request)).result()
    assert again == summary and await rig.doc(request.backtest_id) == doc


async def test_market_data_backtest_equals_the_dataset_backtest(rig):
    anchor, trade_from, trade_to = ms("2023-01-02T16:45"), ms("2023-01-04T00:00"), ms("2023-01-08T00:00")
    stored = [c for c in from_anchor(dataset(FILE), anchor) if c.open_time < trade_to + 20 * 300_000]
    await store_candles(rig.db, stored, "5m", "test")
    common = {"analysis_settings": ANALYSIS, "warmup_from": anchor, "trade_from": trade_from, "trade_to": trade_to}
    from_file = BacktestInput(new_id(), "u1", dataset=FILE, **common)
    from_store = BacktestInput(new_id(), "u1", market_data=MarketDataRange("BTCUSDT", "5m", 0, 2**62), **common)
    async with rig.worker():
        file_summary = await (await rig.start(from_file)).result()
        store_summary = await (await rig.start(from_store)).result()
    assert file_summary.trades > 0
    file_doc, store_doc = await rig.doc(from_file.backtest_id), await rig.doc(from_store.backtest_id)
    assert file_doc and store_doc
    await assert_report_equals(rig, store_doc, direct_backtest(dataset(FILE), from_file))
    assert await stored_trades(rig, store_doc) == await stored_trades(rig, file_doc)
    for name in ("equity_curve", "metrics", "settings", "report"):
        assert canonical(store_doc[name]) == canonical(file_doc[name]), name
    assert store_summary.final_equity == file_summary.final_equity
    assert store_doc["data"]["source"] == "market_data" and store_doc["data"]["candles_loaded"] == len(stored)


PAIRS = ("ETHBTC", "LTCBTC")


async def test_several_symbols_trade_in_one_account_from_files_or_stored_candles(rig):
    """Several datasets (or stored streams) step one Engine over the candles merged by time, as
    ``run_multi_backtest`` does directly; files and stored candles give the same report."""
    anchor, trade_from, trade_to = ms("2018-01-10T12:00"), ms("2018-01-11T12:00"), ms("2018-01-13T00:00")
    series = {s: [c for c in from_anchor(dataset(f"{s}-5m-2018-01.csv.gz"), anchor) if c.open_time < trade_to]
              for s in PAIRS}
    for candles in series.values():
        await store_candles(rig.db, candles, "5m", "test")
    common = {"analysis_settings": ANALYSIS, "engine_settings": {"leverage": 3}, "warmup_from": anchor,
              "trade_from": trade_from, "trade_to": trade_to}
    from_files = BacktestInput(new_id(), "u1", datasets=[f"{s}-5m-2018-01.csv.gz" for s in PAIRS], **common)
    from_store = BacktestInput(new_id(), "u1", market_data=MarketDataRange("LTCBTC", "5m", 0, 2**62),
                               symbols=list(PAIRS), **common)
    async with rig.worker():
        files_summary = await (await rig.start(from_files)).result()
        await (await rig.start(from_store)).result()
    signals = {s: compute_signal_series(c, AnalysisSettings.from_dict(ANALYSIS)) for s, c in series.items()}
    direct = run_multi_backtest(series, signals, EngineSettings(leverage=3), trade_from=trade_from, trade_to=trade_to)
    assert {t.symbol for t in direct.trades} == set(PAIRS)
    files_doc, store_doc = await rig.doc(from_files.backtest_id), await rig.doc(from_store.backtest_id)
    assert files_doc and store_doc
    await assert_report_equals(rig, files_doc, direct)
    assert files_summary.symbols == list(PAIRS) and files_doc["data"]["datasets"] == from_files.datasets
    assert [row["symbol"] for row in files_doc["report"]["tables"]["per_pair"]] == [*PAIRS, "TOTAL"]
    assert set(files_doc["price_curves"]) == set(PAIRS)
    assert await stored_trades(rig, store_doc) == await stored_trades(rig, files_doc)
    for name in ("equity_curve", "metrics", "report", "price_curves"):
        assert canonical(store_doc[name]) == canonical(files_doc[name]), name


DOCUMENT = {"format": "durabot-settings", "version": 1, "symbols": ["BTCUSDT"], "interval": "5m"}
BAD = [
    ({"dataset": "NOPE-5m-2020-01.csv.gz"}, "unknown dataset 'NOPE-5m-2020-01.csv.gz'"),
    ({"dataset": "../../shared/data/candles/BTCUSDT-5m-2023-01.csv.gz"}, "dataset must be a file name"),
    ({"dataset": FILE, "engine_settings": {"leverage": 0}}, "Leverage must be a whole number from 1 to 125x"),
    ({"dataset": FILE, "engine_settings": {"leverage": math.nan}}, "Leverage must be a whole number"),
    ({"dataset": FILE, "engine_settings": {"taker_fee": math.nan}}, "Taker fee must be a number"),
    ({"dataset": FILE, "analysis_settings": {"min_agree": 9}}, "Strategies that must agree"),
    ({"dataset": FILE, "trade_from": ms("2023-01-05T00:00"), "trade_to": ms("2023-01-05T00:00")}, "empty time range"),
    ({"dataset": FILE, "trade_from": ms("2030-01-01T00:00")}, "empty time range: no candle opens"),
    ({"market_data": MarketDataRange("BTCUSDT", "5m", 0, 10**13)}, "empty time range: no stored market_data"),
    ({}, "give exactly one candle source"),
    ({"datasets": ["ETHBTC-5m-2018-01.csv.gz", "ETHBTC-5m-2018-01.csv"]}, "two files of one symbol"),
    ({"datasets": ["ETHBTC-5m-2018-01.csv.gz", "ALTBTC-1m-2017-11.csv.gz"]}, "different intervals"),
    ({"datasets": ["ETHBTC-5m-2018-01.csv.gz", "NOPE-5m-2018-01.csv.gz"]}, "unknown dataset 'NOPE-5m-2018-01.csv.gz'"),
    ({"dataset": FILE, "symbols": ["BTCUSDT"]}, "symbols go with market_data"),
    ({"dataset": FILE, "settings_document": {**DOCUMENT, "symbols": ["ETHBTC"]}},
     "the settings trade ETHBTC but the candles are of BTCUSDT"),
    ({"dataset": FILE, "settings_document": {**DOCUMENT, "engine": {"leverage": 0}}},
     "Leverage must be a whole number from 1 to 125x, got 0"),
]


async def test_bad_inputs_fail_at_once_with_their_reason_and_a_failed_record(rig):
    requests = [(BacktestInput(new_id(), "u1", **fields), reason) for fields, reason in BAD]
    async with rig.worker():
        handles = [(await rig.start(request), request, reason) for request, reason in requests]
        for handle, request, reason in handles:
            with pytest.raises(WorkflowFailureError) as info:
                await handle.result()
            cause = info.value.cause
            assert isinstance(cause, ApplicationError) and reason in cause.message, (reason, cause)
            assert cause.non_retryable
            progress = await handle.query(BacktestWorkflow.progress)
            assert progress.status == STATUS_FAILED and progress.error == cause.message
            doc = await rig.doc(request.backtest_id)
            assert doc is not None, reason
            assert doc["status"] == STATUS_FAILED and doc["error"] == cause.message, doc
            assert doc.get("attempt") in (None, 1), doc  # never retried
            assert not [f for f in REPORT if f in doc], doc  # nothing half-written
    assert await rig.db.backtest_trades.count_documents({}) == 0


@pytest.fixture(scope="module")
def tiled(tmp_path_factory) -> tuple[Path, str]:
    """A data dir with one large file (20 x BTCUSD 1h, ~400k candles): a run of a few seconds."""
    data_dir = tmp_path_factory.mktemp("tiled-data")
    return data_dir, write_tiled(data_dir / "candles", "BTCUSD-1h-2017-2019-coinbase.csv.gz", 20)


async def test_a_worker_stopped_mid_run_hands_the_job_over_and_it_completes_once(rig, tiled):
    data_dir, name = tiled
    request = BacktestInput(new_id(), "u1", dataset=name, heartbeat_timeout_s=5)
    async with rig.worker("a", data_dir):
        handle = await rig.start(request)
        first = await wait_doc(rig, request.backtest_id, lambda d: d["status"] == STATUS_RUNNING)
    assert first["attempt"] == 1
    interrupted = await rig.doc(request.backtest_id)
    assert interrupted is not None and interrupted["status"] == STATUS_RUNNING  # worker a never finished it
    async with rig.worker("b", data_dir):
        summary = await handle.result()
    assert await rig.db.backtest_results.count_documents({}) == 1
    doc = await rig.doc(request.backtest_id)
    assert doc is not None and doc["status"] == STATUS_COMPLETED and doc["attempt"] >= 2
    assert doc["started_at"] == first["started_at"]
    history = await handle.fetch_history()
    started = [e.activity_task_started_event_attributes for e in history.events
               if e.HasField("activity_task_started_event_attributes")]
    # Handed over because worker a reported the shutdown, not after a heartbeat timeout.
    assert "the worker shut down mid-run" in started[-1].last_failure.message
    assert summary.trades == doc["trades_total"] == len(await stored_trades(rig, doc)) > 100
    # The first attempt wrote none (or the same chunks, skipped): no trade is stored twice.
    assert sum([len(row["trades"]) async for row in rig.db.backtest_trades.find({})]) == summary.trades
    assert doc["equity_curve"]["points_of"] == summary.candles_traded > 400_000 - 100
    assert len(doc["equity_curve"]["equity"]) == 1000 and doc["equity_curve"]["equity"][-1] == summary.final_equity


async def test_cancel_reaches_the_running_job_and_marks_it_cancelled(rig, tiled):
    data_dir, name = tiled
    request = BacktestInput(new_id(), "u1", dataset=name, heartbeat_timeout_s=3)
    async with rig.worker("a", data_dir):
        handle = await rig.start(request)
        await wait_doc(rig, request.backtest_id, lambda d: d["status"] == STATUS_RUNNING)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, CancelledError)
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    doc = await rig.doc(request.backtest_id)
    assert doc is not None and doc["status"] == STATUS_CANCELLED and doc["attempt"] == 1, doc
    # Written by the job itself, which learnt of the cancel from a heartbeat (the workflow's own
    # record, for a job that never ran, says only "cancelled").
    assert doc["error"].startswith("cancelled while "), doc
    assert doc["phase"] != "storing" and not [f for f in REPORT if f in doc], doc
    assert await rig.db.backtest_trades.count_documents({}) == 0


async def test_deleting_a_running_backtest_cancels_it_and_leaves_nothing(rig, tiled):
    """The service's delete: a running backtest is cancelled first and removed once its workflow
    ended, so no late write brings back its record or its trades."""
    from core.settings import Settings
    from services.backtests import BacktestRequest, Backtests
    from services.principal import Principal

    data_dir, name = tiled
    settings = Settings(_env_file=None, task_queue_prefix=rig.queue_prefix, data_dir=data_dir)
    # A 3 s heartbeat timeout: the cancel lands within ~2.4 s (the SDK's heartbeat throttle).
    backtests, alice = Backtests(settings, rig.client, rig.db, heartbeat_timeout_s=3), Principal("alice", "rest")
    async with rig.worker("a", data_dir):
        started = await backtests.start(alice, BacktestRequest(dataset=name))
        backtest_id = started["backtest_id"]
        await wait_doc(rig, backtest_id, lambda d: d["status"] == STATUS_RUNNING)
        with pytest.raises(NotFound):
            await backtests.delete(Principal("bob", "rest"), backtest_id)
        deleted = await backtests.delete(alice, backtest_id)
        assert deleted["deleted"] is True and deleted["backtest_id"] == backtest_id
        # The delete returned once the workflow had ended (cancelled, or completed just before the cancel
        # landed: then its trades went with it), so nothing can write after it.
        handle = rig.client.get_workflow_handle(f"backtest:{backtest_id}")
        status = (await handle.describe()).status
        assert status in (WorkflowExecutionStatus.CANCELED, WorkflowExecutionStatus.COMPLETED), status
        await asyncio.sleep(1.0)
    assert await rig.doc(backtest_id) is None and await rig.db.backtest_trades.count_documents({}) == 0
    with pytest.raises(NotFound):
        await backtests.get(alice, backtest_id)
