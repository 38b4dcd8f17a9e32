"""BacktestWorkflow end to end on the real Temporal and SecantusDB: the stored report equals
``run_backtest`` run directly, from a data file or from stored market_data; bad requests fail at
once with their reason and a failed record; a worker stopped mid-run hands the job to another and
the backtest completes once; a cancel reaches the running job and marks it cancelled."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from activities.backtest_runs import REPORT_FIELDS, downsample
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


def assert_report_equals(doc: dict, direct) -> None:
    assert doc["status"] == STATUS_COMPLETED
    assert canonical(doc["trades"]) == trades_json(direct.trades)
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
    assert_report_equals(doc, direct)
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
    assert_report_equals(store_doc, direct_backtest(dataset(FILE), from_file))
    for name in ("trades", "equity_curve", "metrics", "settings"):
        assert canonical(store_doc[name]) == canonical(file_doc[name]), name
    assert store_summary.final_equity == file_summary.final_equity
    assert store_doc["data"]["source"] == "market_data" and store_doc["data"]["candles_loaded"] == len(stored)


BAD = [
    ({"dataset": "NOPE-5m-2020-01.csv.gz"}, "unknown dataset 'NOPE-5m-2020-01.csv.gz'"),
    ({"dataset": "../../shared/data/candles/BTCUSDT-5m-2023-01.csv.gz"}, "dataset must be a file name"),
    ({"dataset": FILE, "engine_settings": {"leverage": 0}}, "setting leverage: must be an integer in [1, 125]"),
    ({"dataset": FILE, "engine_settings": {"leverage": math.nan}}, "setting leverage"),
    ({"dataset": FILE, "engine_settings": {"taker_fee": math.nan}}, "setting taker_fee"),
    ({"dataset": FILE, "analysis_settings": {"min_agree": 9}}, "min_agree"),
    ({"dataset": FILE, "trade_from": ms("2023-01-05T00:00"), "trade_to": ms("2023-01-05T00:00")}, "empty time range"),
    ({"dataset": FILE, "trade_from": ms("2030-01-01T00:00")}, "empty time range: no candle opens"),
    ({"market_data": MarketDataRange("BTCUSDT", "5m", 0, 10**13)}, "empty time range: no stored market_data"),
    ({}, "give exactly one candle source"),
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
    assert summary.trades == len(doc["trades"]) > 100
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
