"""Price prediction (``trading.price_model``) and its training jobs. The model finds the structure of a
mean-reverting series, admits a random walk's lack of any, is textbook ridge regression and never
looks ahead. Training jobs end to end: ``/api/ai/training-jobs`` and ``/api/ai/predictions`` through the
gateway and the ai worker on the real Temporal and SecantusDB, on real ETHBTC candles stored in
``market_data``. A job's progress is visible while it runs and its stored scores are exactly
``trading.price_model.walk_forward`` run directly, so a second job on the same data scores the same
bits; a cancel stops a running job; bad requests are refused naming the field and write nothing;
another user sees none of it; predictions carry the model's version and scores. A ``durabot worker``
subprocess SIGKILLed inside a fold hands that fold (and only that one) to the next worker, and the job
reports the same scores as an uninterrupted run. Recorded histories (``record_training_histories.py``)
replay against today's workflow code."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from activities.binance.key_vault import new_master_key_text
from activities.db import ensure_schema
from activities.market_store import store_candles
from core.contracts import TASK_QUEUE_AI, task_queue_name
from core.datafiles import load_candles
from core.training_contracts import INPUT_ERROR, TrainingInput, training_workflow_id
from services.ai_training import AiTraining, TrainingRequest
from services.principal import Principal
from trading import price_model
from trading.candle import Candle
from workflows.training import TrainingWorkflow

from ..conftest import durabot_env, registered_and_logged_in, wait_until, worker_running

REPO = Path(__file__).resolve().parents[2]
CANDLES = REPO / "data" / "candles"
HISTORIES = Path(__file__).resolve().parent / "training_histories"
SYMBOL = "ETHBTC"
STORED = 2000
JOBS = "/api/ai/training-jobs"
PASSWORD = "correct horse battery staple"
PARAMS = {"symbol": SYMBOL, "interval": "5m", "candles": 1500, "folds": 5, "lookback": 10, "horizon": 1}
MODEL = price_model.ModelParams(lookback=10, horizon=1, ridge=1.0)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def direct_scores(candles: list) -> dict[str, Any]:
    """What the job must report: the walk-forward evaluation run in one call, in this process."""
    return price_model.walk_forward(candles[-PARAMS["candles"]:], MODEL, PARAMS["folds"])


def synthetic(returns: list[float]) -> list[Candle]:
    closes = [100.0]
    for r in returns:
        closes.append(closes[-1] * math.exp(r))
    return [Candle(i * 300_000, c, c * 1.001, c * 0.999, c, 1.0 + i % 7, 300_000, "SYN") for i, c in enumerate(closes)]


def test_the_model_finds_real_structure_admits_none_and_never_looks_ahead():
    rng = random.Random(7)
    noise = [rng.gauss(0, 0.01) for _ in range(3000)]
    mean_reverting = [noise[0]]
    for e in noise[1:]:
        mean_reverting.append(-0.4 * mean_reverting[-1] + e)
    params = price_model.ModelParams(lookback=3, horizon=1, ridge=0.01)
    found = price_model.walk_forward(synthetic(mean_reverting), params, 4)
    assert found["skill"] > 0.1 and found["model"]["directional_accuracy"] > 0.6, found
    walk = price_model.walk_forward(synthetic(noise), params, 4)
    assert abs(walk["skill"]) < 0.01 and walk["model"]["rmse"] >= walk["baseline"]["rmse"], walk  # said as it is

    # The closed form is ridge regression: the same weights as a textbook solve on the standardised rows.
    data = price_model.dataset(synthetic(mean_reverting), params)
    model = price_model.fit(data.x, data.y, 0.01)
    z = (data.x - data.x.mean(axis=0)) / data.x.std(axis=0)
    textbook = np.linalg.solve(z.T @ z / len(z) + 0.01 * np.eye(z.shape[1]), z.T @ (data.y - data.y.mean()) / len(z))
    assert np.allclose(model.weights, textbook, rtol=1e-9, atol=1e-12)
    assert model.weights[0] < 0 and abs(model.weights[0]) > 10 * max(map(abs, model.weights[1:]))  # the lag found

    # No look-ahead. A fold's model knows nothing after the candle its first prediction is made at, and
    # the fold nothing after its test block: changing every later candle changes none of their bits.
    candles = synthetic(mean_reverting)
    span = price_model.fold_spans(len(data.y), 4, params.horizon)[1]

    def changed_after(index: int) -> price_model.Dataset:
        later = [replace(c, close=c.close * 2, high=c.high * 2) for c in candles[index + 1:]]
        return price_model.dataset(candles[:index + 1] + later, params)

    trained = changed_after(params.lookback + span.test_start)
    assert price_model.fit(trained.x[:span.train_end], trained.y[:span.train_end], 0.01) == \
        price_model.fit(data.x[:span.train_end], data.y[:span.train_end], 0.01)
    tested = changed_after(params.lookback + span.test_end - 1 + params.horizon)
    assert price_model.evaluate_fold(tested, span, 0.01) == price_model.evaluate_fold(data, span, 0.01)


@pytest.fixture(scope="module")
async def market(mongo_client) -> tuple[str, list]:
    """One database for the module with the first 2,000 ETHBTC 5m candles stored (storing is slow)."""
    name = f"t_ai_{uuid.uuid4().hex[:10]}"
    candles = load_candles(CANDLES / "ETHBTC-5m-2018-01.csv.gz")[:STORED]
    await ensure_schema(mongo_client[name])
    await store_candles(mongo_client[name], candles, "5m", "test")
    return name, candles


@pytest.fixture
def ai_settings(settings, market, jwt_private_pem):
    return settings.model_copy(update={
        "mongo_database": market[0], "task_queue_prefix": f"ai-{uuid.uuid4().hex[:10]}-",
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "worker_shutdown_grace_s": 0})


@dataclass
class Api:
    gateway: Any
    alice: dict[str, str]
    bob: dict[str, str]
    alice_id: str

    @property
    def http(self):
        return self.gateway.http

    @property
    def db(self):
        return self.gateway.db


@pytest.fixture
async def api(ai_settings, run_gateway, temporal_client, mongo_client) -> AsyncIterator[Api]:
    db = mongo_client[ai_settings.mongo_database]
    async with worker_running(temporal_client, ai_settings, db, "training-test", TASK_QUEUE_AI), \
            run_gateway(ai_settings) as gateway:
        alice = await registered_and_logged_in(gateway.http, PASSWORD)
        bob = await registered_and_logged_in(gateway.http, PASSWORD)
        yield Api(gateway, {"Authorization": f"Bearer {alice['access_token']}"},
                  {"Authorization": f"Bearer {bob['access_token']}"}, alice["user_id"])


async def follow(api: Api, job_id: str, done: Any = None, within_s: float = 60) -> tuple[dict, list[dict]]:
    """Poll the job until ``done`` (default: a final status): its last state and every state seen."""
    done = done or (lambda d: d["status"] in ("completed", "failed", "cancelled"))
    seen: list[dict] = []
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        reply = await api.http.get(f"{JOBS}/{job_id}", headers=api.alice)
        assert reply.status_code == 200, reply.text
        seen.append(reply.json())
        if done(seen[-1]):
            return seen[-1], seen
        assert asyncio.get_running_loop().time() < deadline, seen[-1]
        await asyncio.sleep(0.03)


async def test_a_job_trains_through_rest_with_progress_and_reproducible_honest_scores(api, market, temporal_client):
    _, candles = market
    key = f"train-{uuid.uuid4().hex}"
    started = await api.http.post(JOBS, headers={**api.alice, "Idempotency-Key": key}, json=PARAMS)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert started.json()["status"] == "queued" and started.json()["symbol"] == SYMBOL
    doc, seen = await follow(api, job_id)
    assert doc["status"] == "completed", doc
    # Progress showed fold by fold, never backwards.
    assert any(s["status"] == "running" and 0 < s["folds_done"] < 5 for s in seen), [s.get("folds_done") for s in seen]
    assert [s["progress"] for s in seen] == sorted(s["progress"] for s in seen) and doc["progress"] == 1.0
    assert doc["folds_done"] == doc["folds_total"] == 5 and doc["error"] is None

    # The scores are the direct walk-forward evaluation's, to the bit, and say what they are.
    assert canonical(doc["scores"]) == canonical(direct_scores(candles))
    scores = doc["scores"]
    samples = doc["data"]["samples"]  # the first sixth only trains
    assert scores["samples"] == sum(f["samples"] for f in scores["folds"]) == samples - samples // 6
    assert scores["skill"] == pytest.approx(1 - (scores["model"]["rmse"] / scores["baseline"]["rmse"]) ** 2)
    assert 0 < scores["model"]["directional_accuracy"] < 1 and scores["folds"][0]["test_from"] < scores["folds"][1][
        "test_from"]
    assert doc["data"]["candles"] == 1500 and doc["data"]["first_open_time"] == candles[500].open_time
    assert doc["trained_through"] == candles[-1].open_time
    assert doc["model_version"] == f"{job_id}@{candles[-1].open_time}"
    assert doc["model"]["features"] == price_model.feature_names(10) and len(doc["model"]["weights"]) == 13
    progress = await temporal_client.get_workflow_handle(
        training_workflow_id(api.alice_id, job_id)).query(TrainingWorkflow.progress)
    assert (progress.status, progress.folds_done, progress.fraction) == ("completed", 5, 1.0)

    # The same key and body answer with the first job; the key with another body is refused.
    again = await api.http.post(JOBS, headers={**api.alice, "Idempotency-Key": key}, json=PARAMS)
    assert again.status_code == 202 and again.json()["job_id"] == job_id and again.json()["status"] == "completed"
    other = await api.http.post(JOBS, headers={**api.alice, "Idempotency-Key": key}, json={**PARAMS, "folds": 4})
    assert other.status_code == 422 and other.json()["detail"]["field"] == "Idempotency-Key", other.text

    # A second job on the same data and parameters: the same scores and model, byte for byte.
    second = await api.http.post(JOBS, headers=api.alice, json=PARAMS)
    assert second.status_code == 202 and second.json()["job_id"] != job_id
    second_doc, _ = await follow(api, second.json()["job_id"])
    assert canonical(second_doc["scores"]) == canonical(doc["scores"])
    assert canonical(second_doc["model"]) == canonical(doc["model"])
    listed = await api.http.get(JOBS, headers=api.alice)
    assert [j["job_id"] for j in listed.json()] == [second_doc["job_id"], job_id]
    assert listed.json()[1]["scores"]["skill"] == scores["skill"] and listed.json()[1]["model"] is None
    assert await api.db.training_jobs.count_documents({"user_id": api.alice_id}) == 2

    # Another user finds none of it, and changes nothing.
    for method, path in (("get", f"{JOBS}/{job_id}"), ("post", f"{JOBS}/{job_id}/cancel"),
                         ("get", f"/api/ai/predictions/{SYMBOL}?interval=5m")):
        reply = await api.http.request(method, path, headers=api.bob)
        assert reply.status_code == 404, (path, reply.text)
        assert job_id not in reply.text
    assert (await api.http.get(JOBS, headers=api.bob)).json() == []
    assert (await api.http.get(f"{JOBS}/{job_id}", headers=api.alice)).json() == doc


async def test_cancel_stops_a_running_job(api, temporal_client):
    body = {**PARAMS, "candles": 2000, "folds": 20, "lookback": 5}
    started = await api.http.post(JOBS, headers=api.alice, json=body)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    running, _ = await follow(api, job_id, lambda d: (d["folds_done"] or 0) >= 1)
    assert running["status"] == "running", running
    assert (await api.http.post(f"{JOBS}/{job_id}/cancel", headers=api.bob)).status_code == 404
    cancelled = await api.http.post(f"{JOBS}/{job_id}/cancel", headers=api.alice)
    assert cancelled.status_code == 200, cancelled.text
    doc = cancelled.json()
    assert doc["status"] == "cancelled" and doc["error"] == "cancelled", doc
    assert doc["folds_done"] < 20 and doc["scores"] is None and doc["model"] is None
    handle = temporal_client.get_workflow_handle(training_workflow_id(api.alice_id, job_id))
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    await asyncio.sleep(1.0)  # a fold still finishing on the worker writes nothing now
    assert (await api.http.get(f"{JOBS}/{job_id}", headers=api.alice)).json() == doc
    again = await api.http.post(f"{JOBS}/{job_id}/cancel", headers=api.alice)
    assert again.status_code == 200 and again.json() == doc
    prediction = await api.http.get(f"/api/ai/predictions/{SYMBOL}", headers=api.alice)
    assert prediction.status_code == 404 and "no trained model" in prediction.json()["detail"]


async def test_a_job_cancelled_before_any_worker_took_it_is_closed_by_the_first(
        ai_settings, temporal_client, mongo_client):
    db = mongo_client[ai_settings.mongo_database]
    training, alice = AiTraining(ai_settings, temporal_client, db, cancel_wait_s=0.5), Principal("early", "rest")
    job_id = (await training.start(alice, TrainingRequest(SYMBOL, "5m"), None))["job_id"]
    answer = await training.cancel(alice, job_id)
    assert answer["status"] == "queued"  # no worker yet: said as it is
    handle = temporal_client.get_workflow_handle(training_workflow_id("early", job_id))
    async with worker_running(temporal_client, ai_settings, db, "late-worker", TASK_QUEUE_AI):
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    doc = await training.get(alice, job_id)
    assert doc["status"] == "cancelled" and doc["error"] == "cancelled" and "data" not in doc, doc


BAD = [
    ({**PARAMS, "symbol": "NOPEUSDT"}, "symbol", "no stored NOPEUSDT 5m candles"),
    ({**PARAMS, "symbol": "ADABTC"}, "symbol", "only 100 stored ADABTC 5m candles; these parameters need at least 407"),
    ({**PARAMS, "interval": "7m"}, "interval", "Input should be '1m'"),
    ({**PARAMS, "folds": 1}, "folds", "greater than or equal to 2"),
    ({**PARAMS, "folds": 21}, "folds", "less than or equal to 20"),
    ({**PARAMS, "lookback": 0}, "lookback", "greater than or equal to 1"),
    ({**PARAMS, "horizon": 49}, "horizon", "less than or equal to 48"),
    ({**PARAMS, "ridge": 0}, "ridge", "greater than or equal to 0.000001"),
    ({**PARAMS, "candles": 300, "lookback": 50, "folds": 20}, "candles", "need at least 5637 candles; candles is 300"),
    ({**PARAMS, "symbol": "ethbtc"}, "symbol", "should match pattern"),
    ({**PARAMS, "learning_rate": 0.1}, "learning_rate", "Extra inputs are not permitted"),
    ({k: v for k, v in PARAMS.items() if k != "symbol"}, "symbol", "Field required"),
]


async def test_bad_inputs_are_refused_with_their_field_and_write_nothing(api, ai_settings, temporal_client):
    ada = load_candles(CANDLES / "ADABTC-5m-2018-01.csv.gz")[:100]
    await store_candles(api.db, ada, "5m", "test")
    for body, field_name, reason in BAD:
        reply = await api.http.post(JOBS, headers=api.alice, json=body)
        assert reply.status_code == 422, (body, reply.text)
        detail = reply.json()["detail"]
        assert detail["field"] == field_name and reason in detail["reason"], (body, detail)
    assert await api.db.training_jobs.count_documents({"user_id": api.alice_id}) == 0
    started = [w async for w in temporal_client.list_workflows(
        f"WorkflowId STARTS_WITH 'training:{api.alice_id}:'")]
    assert started == []

    # Started past the service, a bad request fails at once (never retried) and says why in its record.
    queue = task_queue_name(TASK_QUEUE_AI, ai_settings.task_queue_prefix)
    for request, reason in ((TrainingInput("bad-folds", "direct", SYMBOL, "5m", folds=1),
                             "folds must be a whole number from 2 to 20, got 1"),
                            (TrainingInput("no-candles", "direct", "NOPEUSDT", "5m"),
                             "no stored NOPEUSDT 5m candles: nothing to train on")):
        handle = await temporal_client.start_workflow(
            TrainingWorkflow.run, request, id=training_workflow_id("direct", request.job_id), task_queue=queue)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        cause = info.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == INPUT_ERROR and cause.message == reason
        doc = await api.db.training_jobs.find_one({"job_id": request.job_id})
        assert doc is not None and doc["status"] == "failed" and doc["error"] == reason, doc
        assert "scores" not in doc and "model" not in doc
        assert (await handle.query(TrainingWorkflow.progress)).status == "failed"


async def test_predictions_serve_the_latest_model_with_its_version_and_scores(api):
    ltc = load_candles(CANDLES / "LTCBTC-5m-2018-01.csv.gz")[:604]
    await store_candles(api.db, ltc[:600], "5m", "test")
    body = {"symbol": "LTCBTC", "interval": "5m", "candles": 500, "folds": 3, "lookback": 5, "horizon": 3}
    path = "/api/ai/predictions/LTCBTC?interval=5m"
    missing = await api.http.get(path, headers=api.alice)
    assert missing.status_code == 404, missing.text
    assert missing.json()["detail"] == ("no trained model of yours for LTCBTC 5m: train one with "
                                        "POST /api/ai/training-jobs")
    job_id = (await api.http.post(JOBS, headers=api.alice, json=body)).json()["job_id"]
    doc, _ = await follow(api, job_id)
    assert doc["status"] == "completed", doc

    # New candles arrive after training: the model is applied to the latest.
    await store_candles(api.db, ltc[600:], "5m", "test")
    reply = await api.http.get(path, headers=api.alice)
    assert reply.status_code == 200, reply.text
    prediction = reply.json()
    params = price_model.ModelParams(lookback=5, horizon=3, ridge=1.0)
    data = price_model.dataset(ltc[100:600], params)
    expected = price_model.predict_latest(price_model.fit(data.x, data.y, 1.0), ltc[-6:], 5)
    assert prediction["predicted_log_return"] == expected
    assert prediction["predicted_close"] == pytest.approx(ltc[-1].close * (1 + prediction["predicted_return"]))
    assert prediction["model_version"] == doc["model_version"] == f"{job_id}@{ltc[599].open_time}"
    assert prediction["trained_through"] == ltc[599].open_time and prediction["candles_since_training"] == 4
    assert prediction["from_open_time"] == ltc[-1].open_time and prediction["from_close"] == ltc[-1].close
    assert prediction["target_close_time"] == ltc[-1].close_time + 3 * 300_000
    assert prediction["scores"] == doc["scores"]
    assert (await api.http.get("/api/ai/predictions/LTCBTC?interval=1h", headers=api.alice)).status_code == 404
    assert (await api.http.get("/api/ai/predictions/LTCBTC?interval=7m", headers=api.alice)).status_code == 422


# -------------------------------------------------------------------------- a worker killed mid-fold
@dataclass
class WorkerProcess:
    """A ``durabot worker`` subprocess whose JSON log lines are read as they come; it SIGKILLs itself
    the instant the armed fold logs its start."""

    proc: subprocess.Popen
    kill_at_fold: int | None = None
    folds_started: list[int] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw)
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if line.get("logger") == "durabot.training" and line.get("msg") == "fold start":
                self.folds_started.append(line["fold"])
                if line["fold"] == self.kill_at_fold and not self.killed.is_set():
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.killed.set()
            if line.get("msg") == "worker started":
                self.started.set()

    @classmethod
    def start(cls, env: dict[str, str], cwd: Path, kill_at_fold: int | None = None) -> WorkerProcess:
        proc = subprocess.Popen([sys.executable, "-m", "durabot", "worker"], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        worker = cls(proc, kill_at_fold)
        threading.Thread(target=worker.read, daemon=True).start()
        return worker

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def test_a_worker_killed_mid_fold_resumes_at_that_fold_with_the_same_scores(
        ai_settings, market, temporal_client, mongo_client, tmp_path):
    _, candles = market
    s = ai_settings
    env = durabot_env(DURABOT_TEMPORAL_ADDRESS=s.temporal_address, DURABOT_MONGO_URI=s.mongo_uri,
                      DURABOT_MONGO_DATABASE=s.mongo_database, DURABOT_TASK_QUEUE_PREFIX=s.task_queue_prefix,
                      DURABOT_VAR_DIR=str(tmp_path / "var"), DURABOT_FEED_AUTOSTART="false",
                      DURABOT_WORKER_SHUTDOWN_GRACE_S="0", DURABOT_LOG_LEVEL="INFO")
    request = TrainingInput(f"kill-{uuid.uuid4().hex[:8]}", "killtest", SYMBOL, "5m", folds=PARAMS["folds"],
                            lookback=PARAMS["lookback"], candles=PARAMS["candles"], heartbeat_timeout_s=2)
    first = WorkerProcess.start(env, tmp_path, kill_at_fold=3)
    workers = [first]
    try:
        await asyncio.to_thread(wait_until, first.started.is_set, 60, "the first worker")
        handle = await temporal_client.start_workflow(
            TrainingWorkflow.run, request, id=training_workflow_id("killtest", request.job_id),
            task_queue=task_queue_name(TASK_QUEUE_AI, s.task_queue_prefix))
        await asyncio.to_thread(wait_until, first.killed.is_set, 60, "the kill inside fold 3")
        await asyncio.to_thread(first.proc.wait, 10)
        # Died inside the fold: Temporal still holds it as started on the dead worker.
        pending = (await handle.describe()).raw_description.pending_activities
        assert [(p.activity_type.name, p.state) for p in pending] == [
            ("run_training_fold", PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)], pending
        second = WorkerProcess.start(env, tmp_path)
        workers.append(second)
        # What a worker's graceful shutdown does and a killed one cannot: otherwise the workflow's next
        # task waits out the dead worker's sticky queue (10 s) before any worker may take it.
        await temporal_client.workflow_service.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
            namespace=temporal_client.namespace, execution=WorkflowExecution(workflow_id=handle.id)))
        result = await asyncio.wait_for(handle.result(), 90)
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
    tail = "".join(first.lines[-5:] + second.lines[-5:])
    # Folds 1 and 2 ran once, on the dead worker; the next one took over at fold 3.
    assert first.folds_started == [1, 2, 3] and second.folds_started == [3, 4, 5], tail
    assert canonical(result.scores) == canonical(direct_scores(candles))
    doc = await mongo_client[s.mongo_database].training_jobs.find_one({"job_id": request.job_id})
    assert doc is not None and doc["status"] == "completed" and canonical(doc["scores"]) == canonical(result.scores)
    history = await handle.fetch_history()
    folds = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
             and e.activity_task_scheduled_event_attributes.activity_type.name == "run_training_fold"]
    assert len(folds) == 5
    attempts = [e.activity_task_started_event_attributes.attempt for e in history.events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert max(attempts) == 2 and attempts.count(2) == 1


# ------------------------------------------------------------------------------------------- replay
def recorded() -> list[WorkflowHistory]:
    return [WorkflowHistory.from_json(path.name.split(".")[0].split("-", 1)[1].replace("+", ":"),
                                      gzip.decompress(path.read_bytes()).decode())
            for path in sorted(HISTORIES.glob("*.json.gz"))]


def test_recorded_histories_cover_completion_cancel_and_failure():
    endings = {h.events[-1].event_type for h in recorded()}
    assert endings == {EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
                       EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
                       EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED}, "record with record_training_histories.py"


async def test_recorded_histories_replay_without_nondeterminism():
    replayer = Replayer(workflows=[TrainingWorkflow])
    for history in recorded():
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, (history.workflow_id, result.replay_failure)
