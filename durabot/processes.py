"""The processes `durabot up` manages, as one table. A later capability adds a row."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.contracts import SEARCH_ATTRIBUTES, TASK_QUEUES, task_queue_name
from core.settings import Settings

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Callable[[Settings], list[str]]
    enabled: Callable[[Settings], bool]
    # (port, the setting that moves it): checked free before start, named in the error if not.
    ports: Callable[[Settings], list[tuple[int, str]]]
    healthy: Callable[[Settings], bool]
    urls: Callable[[Settings], list[tuple[str, str]]]
    # Restarted by `up` when it dies (with backoff, until it crash-loops); the data services are not:
    # their death stops `up`, since nothing above them can work meanwhile.
    restart: bool = False
    # How many copies `up` runs, and the settings of copy i (0-based). ``urls`` speaks for all of them.
    copies: Callable[[Settings], int] = lambda s: 1
    copy_settings: Callable[[Settings, int], Settings] = lambda s, i: s
    # Healthy as `up` sees one copy, by its pid (default: ``healthy``): a second worker is not ready
    # just because the first one polls.
    ready: Callable[[Settings, int], bool] | None = None


@dataclass(frozen=True)
class Copy:
    """One process `up` runs: a spec, with the settings of this copy."""

    name: str
    spec: ProcessSpec
    settings: Settings
    index: int = 0

    def ready(self, pid: int) -> bool:
        if self.spec.ready is not None:
            return self.spec.ready(self.settings, pid)
        return self.spec.healthy(self.settings)


def copies_of(spec: ProcessSpec, s: Settings) -> list[Copy]:
    count = spec.copies(s)
    return [Copy(spec.name if count == 1 else f"{spec.name}-{i + 1}", spec, spec.copy_settings(s, i), i)
            for i in range(count)]


def _sa_type(key) -> str:
    return {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList"}[
        key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")
    ]


def temporal_argv(s: Settings) -> list[str]:
    (s.var_dir / "temporal").mkdir(parents=True, exist_ok=True)
    argv = [
        str(BIN / "temporal"), "server", "start-dev",
        "--ip", "127.0.0.1", "--port", str(s.temporal_port), "--ui-port", str(s.temporal_ui_port),
        "--db-filename", str(s.var_dir / "temporal" / "temporal.db"),
        "--namespace", s.temporal_namespace,
        # WAL roughly doubles the dev server's throughput on SQLite (STACK.md).
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        "--ui-disable-news-fetch",
        "--dynamic-config-value", "frontend.enableServerVersionCheck=false",
        "--log-level", "warn",
    ]
    for key in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{key.name}={_sa_type(key)}"]
    return argv


def mongo_argv(s: Settings) -> list[str]:
    (s.var_dir / "mongo").mkdir(parents=True, exist_ok=True)
    return [str(BIN / "secantusd-py"), "--host", "127.0.0.1", "--port", str(s.mongo_port),
            "--storage-path", str(s.var_dir / "mongo"), "--log-level", "WARNING"]


def sim_exchange_argv(s: Settings) -> list[str]:
    return [sys.executable, "-m", "durabot", "sim", "exchange", "--port", str(s.sim_exchange_port),
            "--data-dir", str(s.data_dir), "--state-dir", str(s.var_dir / "sim"), "--speed", s.sim_speed,
            "--start-offset-candles", str(s.sim_start_offset),
            *(arg for symbol in s.sim_symbol_list or () for arg in ("--symbol", symbol))]


def sim_xai_argv(s: Settings) -> list[str]:
    return [sys.executable, "-m", "durabot", "sim", "xai", "--port", str(s.sim_xai_port),
            "--state-dir", str(s.var_dir / "sim-xai")]


def sim_telegram_argv(s: Settings) -> list[str]:
    # The sim accepts the bot's configured token (else its own default). Only a local sim runs, so this
    # token is the sim's, not a real bot's.
    token = ["--token", s.telegram_bot_token.get_secret_value()] if s.telegram_bot_token is not None else []
    return [sys.executable, "-m", "durabot", "sim", "telegram", "--port", str(s.sim_telegram_port),
            "--state-dir", str(s.var_dir / "sim-telegram"), *token]


def _cli_ok(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done if done.returncode == 0 else None


def temporal_healthy(s: Settings) -> bool:
    done = _cli_ok([str(BIN / "temporal"), "operator", "cluster", "health", "--address", s.temporal_target])
    return done is not None and "SERVING" in done.stdout


def mongo_healthy(s: Settings) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    try:
        with MongoClient(s.mongo_target, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000) as client:
            client.admin.command("ping")
        return True
    except PyMongoError:
        return False


def _pollers_ok(s: Settings, identity_suffix: str | None) -> bool:
    """Every task queue has a poller (one whose identity ends with ``identity_suffix`` + role, if given)."""
    for role in TASK_QUEUES:
        queue = task_queue_name(role, s.task_queue_prefix)
        done = _cli_ok([str(BIN / "temporal"), "task-queue", "describe", "--task-queue", queue,
                        "--task-queue-type", "activity", "--address", s.temporal_target,
                        "--namespace", s.temporal_namespace, "-o", "json"])
        if done is None:
            return False
        pollers = json.loads(done.stdout).get("pollers") or []
        if identity_suffix is not None:
            pollers = [p for p in pollers if str(p.get("identity", "")).endswith(f"{identity_suffix}/{role}")]
        if not pollers:
            return False
    return True


def worker_healthy(s: Settings) -> bool:
    return _pollers_ok(s, None)


def worker_polling(s: Settings, pid: int) -> bool:
    # The worker's identity is durabot-worker@{host}:{pid}/{role} (worker.main).
    return _pollers_ok(s, f"@{socket.gethostname()}:{pid}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (our own loopback URL)
            return 200 <= reply.status < 300
    except OSError:
        return False


def gateway_copy(s: Settings, index: int) -> Settings:
    return s.model_copy(update={"gateway_port": s.gateway_port + index, "mcp_port": s.mcp_port + index})


def gateway_urls(s: Settings) -> list[tuple[str, str]]:
    from gateway.static import DIST  # the gateway serves the dashboard from here once it is built

    built = (DIST / "index.html").is_file()
    dashboard = f"{s.gateway_url}/" if built else "not built: bin/durabot up builds it (or npm run build in webapp/)"
    others = [(f"Gateway {i + 1}", f"{gateway_copy(s, i).gateway_url}/") for i in range(1, s.gateways)]
    mcp = [("MCP", s.mcp_url)] if s.mcp_enabled else []
    return [("Dashboard", dashboard), ("API", f"{s.gateway_url}/api/health"), ("API docs", f"{s.gateway_url}/docs"),
            *mcp, *others]


def gateway_ports(s: Settings) -> list[tuple[int, str]]:
    setting = "DURABOT_GATEWAY_PORT" if s.gateways == 1 else "DURABOT_GATEWAY_PORT and DURABOT_GATEWAYS"
    mcp_setting = "DURABOT_MCP_PORT" if s.gateways == 1 else "DURABOT_MCP_PORT and DURABOT_GATEWAYS"
    return [(s.gateway_port, setting)] + ([(s.mcp_port, mcp_setting)] if s.mcp_enabled else [])


def telegram_bot_enabled(s: Settings) -> bool:
    from services.telegram_links import bot_token

    return bot_token(s) is not None


def telegram_bot_healthy(s: Settings) -> bool:
    from gateway.telegram.polling import POLL_TIMEOUT_S, heartbeat_fresh
    from gateway.telegram.runner import heartbeat_path

    # The bot touches its heartbeat before every long poll.
    return heartbeat_fresh(heartbeat_path(s), POLL_TIMEOUT_S * 3)


def durabot_argv(command: str) -> Callable[[Settings], list[str]]:
    return lambda s: [sys.executable, "-m", "durabot", command]


PROCESSES: tuple[ProcessSpec, ...] = (
    ProcessSpec(
        name="temporal",
        argv=temporal_argv,
        enabled=lambda s: s.embedded_temporal,
        ports=lambda s: [(s.temporal_port, "DURABOT_TEMPORAL_PORT"), (s.temporal_ui_port, "DURABOT_TEMPORAL_UI_PORT")],
        healthy=temporal_healthy,
        urls=lambda s: [("Temporal UI", f"http://127.0.0.1:{s.temporal_ui_port}")],
    ),
    ProcessSpec(
        name="mongo",
        argv=mongo_argv,
        enabled=lambda s: s.embedded_mongo,
        ports=lambda s: [(s.mongo_port, "DURABOT_MONGO_PORT")],
        healthy=mongo_healthy,
        urls=lambda s: [],
    ),
    ProcessSpec(
        name="exchange",
        restart=True,
        argv=sim_exchange_argv,
        enabled=lambda s: s.exchange_is_local_sim,
        ports=lambda s: [(s.sim_exchange_port, "DURABOT_SIM_EXCHANGE_PORT")],
        healthy=lambda s: http_ok(f"http://127.0.0.1:{s.sim_exchange_port}/api/v3/ping"),
        urls=lambda s: [("Sim exchange", f"http://127.0.0.1:{s.sim_exchange_port}/sim/state")],
    ),
    ProcessSpec(
        name="xai",
        restart=True,
        argv=sim_xai_argv,
        enabled=lambda s: s.xai_is_local_sim,
        ports=lambda s: [(s.sim_xai_port, "DURABOT_SIM_XAI_PORT")],
        healthy=lambda s: http_ok(f"http://127.0.0.1:{s.sim_xai_port}/sim/health"),
        urls=lambda s: [("Sim xAI", f"http://127.0.0.1:{s.sim_xai_port}/sim/requests")],
    ),
    ProcessSpec(
        name="telegram-sim",
        restart=True,
        argv=sim_telegram_argv,
        enabled=lambda s: s.telegram_is_local_sim,
        ports=lambda s: [(s.sim_telegram_port, "DURABOT_SIM_TELEGRAM_PORT")],
        healthy=lambda s: http_ok(f"http://127.0.0.1:{s.sim_telegram_port}/sim/health"),
        urls=lambda s: [("Sim Telegram chat", f"http://127.0.0.1:{s.sim_telegram_port}/chat")],
    ),
    ProcessSpec(
        name="worker",
        restart=True,
        argv=durabot_argv("worker"),
        enabled=lambda s: True,
        ports=lambda s: [],
        healthy=worker_healthy,
        urls=lambda s: [],
        copies=lambda s: s.workers,
        ready=worker_polling,
    ),
    ProcessSpec(
        name="gateway",
        restart=True,
        argv=durabot_argv("gateway"),
        enabled=lambda s: True,
        ports=gateway_ports,
        healthy=lambda s: http_ok(f"{s.gateway_url}/api/health"),
        urls=gateway_urls,
        copies=lambda s: s.gateways,
        copy_settings=gateway_copy,
    ),
    ProcessSpec(
        name="telegram",
        restart=True,
        argv=durabot_argv("telegram"),
        # A bot token is set, or offline the local sim/telegram's default one is used.
        enabled=telegram_bot_enabled,
        ports=lambda s: [],
        healthy=telegram_bot_healthy,
        urls=lambda s: [],
    ),
)
