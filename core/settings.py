"""Every Durabot setting, read from ``DURABOT_*`` environment variables and ``.env``.

The embedded stack is the default: leave ``temporal_address`` / ``mongo_uri`` unset and
``durabot up`` starts its own Temporal dev server and SecantusDB. Set either and ``up`` uses that
external service instead. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from trading.candle import INTERVAL_MS

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DURABOT_", env_file=".env", extra="ignore")

    var_dir: Path = Field(REPO_ROOT / "var", description="Runtime state: Temporal SQLite, MongoDB files, keys, logs.")
    data_dir: Path = Field(REPO_ROOT / "data", description="Real market data the sim exchange replays.")

    temporal_address: str | None = Field(
        None, description="host:port of an external Temporal frontend; unset = embedded dev server."
    )
    temporal_namespace: str = Field("default", description="Temporal namespace.")
    temporal_port: int = Field(7233, ge=1, le=65535, description="Embedded Temporal gRPC port.")
    temporal_ui_port: int = Field(8233, ge=1, le=65535, description="Embedded Temporal Web UI port.")
    task_queue_prefix: str = Field(
        "", description="Prefix of the trading/market/ai task queues, so deployments can share a namespace."
    )
    temporal_ui_url: str | None = Field(
        None, description="Temporal Web UI URL shown to operators; unset = the embedded UI."
    )

    mongo_uri: str | None = Field(None, description="MongoDB URI of an external server; unset = embedded SecantusDB.")
    mongo_port: int = Field(27017, ge=1, le=65535, description="Embedded SecantusDB port.")
    mongo_database: str = Field("durabot", description="Database name.")

    gateway_host: str = Field("127.0.0.1", description="Address the gateway binds to.")
    gateway_port: int = Field(8080, ge=1, le=65535, description="Gateway port (REST, /ws, dashboard).")
    workers: int = Field(1, ge=1, le=64, description="`durabot up`: how many worker processes it runs (Temporal "
                                                      "spreads sessions over them).")
    gateways: int = Field(1, ge=1, le=64, description="`durabot up`: how many gateway processes it runs, on "
                                                       "gateway_port, gateway_port + 1, …")
    mcp_enabled: bool = Field(True, description="Serve the MCP server (Streamable HTTP at /mcp) from each gateway.")
    mcp_port: int = Field(8090, ge=1, le=65535, description="MCP port of the first gateway (the next ones use "
                                                           "mcp_port + 1, …).")
    mcp_public_url: str | None = Field(
        None, description="The MCP server's URL as clients reach it (behind a proxy): the audience its tokens are "
                          "issued for. Unset: http://<gateway_host>:<mcp_port>/mcp.")
    mcp_allowed_origins: str = Field(
        "", description="Comma-separated browser Origins allowed to call the MCP server besides its own loopback "
                        "ones (DNS-rebinding protection refuses the rest with 403).")
    mcp_calls_per_minute: int = Field(120, ge=1, le=100_000, description="MCP tool calls allowed per token per "
                                                                         "minute (429 beyond).")
    agent_token_max_days: int = Field(90, ge=1, le=366, description="Longest lifetime a user may give an agent "
                                                                    "token or an MCP grant (days).")
    oauth_consent_ttl_s: int = Field(600, ge=30, le=3600, description="How long an MCP client's OAuth authorization "
                                                                       "request waits for its consent page's answer.")
    oauth_code_ttl_s: int = Field(60, ge=1, le=600, description="How long an OAuth authorization code may be redeemed "
                                                                "(once) for its access token.")
    oauth_registrations_per_hour: int = Field(20, ge=1, le=10_000, description="OAuth client registrations (RFC 7591) "
                                                                               "one IP may make per hour (429 beyond).")
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1", description="Comma-separated addresses or networks of proxies (or `*`) whose "
                                     "X-Forwarded-For the gateway trusts for the client IP that rate limits count.")

    exchange_rest_url: str = Field(
        "http://127.0.0.1:8900", description="Binance spot REST base URL; the default is the local sim exchange."
    )
    exchange_futures_url: str = Field(
        "http://127.0.0.1:8900", description="Binance USDⓈ-M futures REST base URL (fapi)."
    )
    exchange_ws_url: str = Field("ws://127.0.0.1:8900", description="Binance market-stream WebSocket base URL.")
    exchange_futures_ws_url: str = Field(
        "ws://127.0.0.1:8900", description="Binance USDⓈ-M WebSocket base URL (user-data streams: /ws/<listenKey>).")
    sim_exchange_port: int = Field(8900, ge=1, le=65535, description="Port of the embedded sim exchange.")
    sim_speed: str = Field("60", description="Sim replay speed: a multiplier of real time, or `max`.")
    sim_start_offset: int = Field(500, ge=0, description="Candles into each series the sim's replay starts.")
    feed_market: Literal["spot", "usdm"] = Field(
        "spot", description="Which market's klines the feed follows: spot, or usdm (USDⓈ-M perpetuals: futures REST "
                            "and DURABOT_EXCHANGE_FUTURES_WS_URL), for futures sessions that must decide on "
                            "contract candles.")
    feed_source: str | None = Field(
        None, description="Name of the market feed (workflow feed:{name}); unset = `sim` or `binance` by URL."
    )
    sim_symbols: str = Field(
        "BTCUSDT",
        description="Comma-separated symbols whose data files the sim replays (others are opt-in); `all` = every file.",
    )
    feed_streams: str = Field(
        "BTCUSDT@5m",
        description="SYMBOL@interval streams the market feed always follows (sessions add their own).",
    )

    feed_autostart: bool = Field(
        True, description="Workers start feed:{source} when it is not running (off when feeds are managed apart)."
    )
    feed_backfill_candles: int = Field(
        1000, ge=1, le=100_000, description="Candles the feed fetches for a stream it has never stored."
    )
    feed_heartbeat_timeout_s: float = Field(
        30.0, ge=2.0, le=600.0,
        description="A feed whose worker died resumes on another worker after this long without a heartbeat.",
    )

    # Accounts and security (issue 5). Unset keys are generated once into var_dir with mode 0600.
    jwt_private_key: SecretStr | None = Field(
        None, description="PEM RSA private key signing JWTs (RS256); unset = generated into var/jwt-private.pem."
    )
    jwt_retired_public_keys: str | None = Field(
        None, description="PEM public keys of retired signing keys, still accepted until their tokens expire."
    )
    jwt_issuer: str = Field("durabot", min_length=1, description="JWT `iss` the gateway issues and requires.")
    jwt_audience: str = Field("durabot-api", min_length=1, description="JWT `aud` of access tokens.")
    access_token_ttl_s: int = Field(900, ge=60, le=3600, description="Access token lifetime (seconds).")
    refresh_token_ttl_s: int = Field(
        7 * 86_400, ge=3600, le=30 * 86_400, description="Refresh token lifetime (seconds); rotated on every use."
    )
    master_key: SecretStr | None = Field(
        None, description="Base64url 32-byte AES-GCM key encrypting exchange API keys; unset = var/master.key."
    )
    retired_master_keys: SecretStr | None = Field(
        None, description="Comma-separated retired master keys, used only to decrypt keys saved under them."
    )
    login_attempts_per_ip: int = Field(20, ge=1, description="Login attempts one IP may make per login window.")
    login_failures_per_email: int = Field(5, ge=1, description="Failed logins one email may have per login window.")
    login_window_s: int = Field(300, ge=1, description="Sliding window of the login rate limits (seconds).")
    two_factor_issuer: str = Field("Durabot", min_length=1, max_length=40,
                                   description="The issuer name authenticator apps show next to the account.")
    two_factor_failures_per_user: int = Field(
        5, ge=1, description="Wrong two-factor codes one user may enter per two-factor window.")
    two_factor_attempts_per_ip: int = Field(
        20, ge=1, description="Two-factor code attempts one IP may make per two-factor window.")
    two_factor_window_s: int = Field(300, ge=1, description="Sliding window of the two-factor rate limits (seconds).")
    login_challenge_ttl_s: int = Field(
        300, ge=30, le=3600, description="How long the code step of a two-factor login may follow its password step.")
    step_up_window_s: int = Field(
        300, ge=30, le=3600, description="How long a two-factor code entered in a login session allows money and "
                                         "access actions (saving exchange keys, RED approvals, …) in that session.")
    step_up_notional_default: float = Field(
        1000.0, ge=0, description="Default notional (quote currency) above which confirming a real order needs a "
                                  "fresh two-factor code; each user can change their own.")

    connect_timeout_s: float = Field(15.0, gt=0, description="How long worker and gateway wait for Temporal/MongoDB.")
    startup_timeout_s: float = Field(60.0, gt=0, description="How long `up` waits for each process to be healthy.")
    gateway_dependency_timeout_s: float = Field(
        3.0, gt=0, description="How long the gateway waits for an unreachable Temporal or MongoDB before answering 503."
    )
    up_first_restart_pause_s: float = Field(
        1.0, ge=0.05, le=30, description="`durabot up`: the pause before a crashed child's first restart (doubling "
                                         "with each crash in a row, up to 30 s).")
    worker_shutdown_grace_s: float = Field(10.0, ge=0, description="Grace period for running activities at shutdown.")
    log_level: str = Field("INFO", description="Log level of worker and gateway.")
    # Self-tuning (docs/tuning.md): every duration is here, so tests run them in seconds.
    tuning_approval_expiry_s: float = Field(
        3600.0, gt=0, le=7 * 86_400, description="How long a YELLOW or RED proposal waits for its owner (seconds).")
    tuning_auto_apply_interval_s: float = Field(
        3600.0, gt=0, description="How often auto-apply looks for GREEN or risk-lowering rule suggestions (seconds).")
    tuning_green_cooldown_s: float | None = Field(
        None, ge=0, description="Cooldown after a GREEN change (seconds); unset = each parameter's own (1-2 h).")
    tuning_yellow_cooldown_s: float | None = Field(
        None, ge=0, description="Cooldown after a YELLOW change (seconds); unset = each parameter's own (6 h).")
    tuning_red_cooldown_s: float | None = Field(
        None, ge=0, description="Cooldown after a RED change (seconds); unset = each parameter's own (1-6 h).")

    # Real orders (docs/real-trading.md): every wait is here, so tests run them in seconds.
    order_confirm_expiry_s: float = Field(
        60.0, gt=0, le=3600, description="How long a manual real order waits for its owner's confirmation (seconds).")
    order_request_timeout_s: float = Field(
        10.0, gt=0, le=120, description="HTTP timeout of one order request to the exchange (seconds).")
    order_submit_timeout_s: float = Field(
        15.0, gt=0, le=300, description="How long the order workflow waits for a submission before its outcome "
                                        "counts as unknown and is looked up (seconds).")
    order_protection_window_s: float = Field(
        30.0, gt=0, le=3600, description="How long an order of unknown outcome is looked up while the exchange "
                                         "says it does not exist, before it is NOT_PLACED (seconds).")
    order_poll_interval_s: float = Field(
        5.0, gt=0, le=600, description="How often an open order is read back from the exchange (seconds).")
    order_taker_fee_rate: float = Field(
        0.0005, ge=0, le=0.01, description="Taker fee rate shown in a real order's summary (USDⓈ-M default 0.05%).")
    order_maintenance_margin_rate: float = Field(
        0.004, ge=0, le=0.5, description="Maintenance margin rate of the liquidation price estimate in a summary.")
    real_max_order_notional: float = Field(
        10_000.0, gt=0, description="Largest notional (quote currency) of one manual real order; above it the risk "
                                    "check refuses the order.")
    exchange_weight_per_minute: int = Field(
        2400, gt=0, le=1_000_000, description="The exchange's request weight per minute and IP that every worker and "
                                              "gateway share (Binance USDⓈ-M: 2400); raise it only for an exchange "
                                              "that grants more (the sim's weight_limit_per_minute).")
    real_protection_confirm_s: float = Field(
        5.0, gt=0, le=120, description="How long a real session's fresh position waits for the exchange to show its "
                                       "stop and take profit before it is closed and entries halt (seconds).")
    real_session_run_events: int = Field(
        2_000, ge=100, le=50_000, description="A real session continues as new once a run's history holds this many "
                                              "events (a cold worker replays one run).")
    real_reconcile_every_s: float = Field(
        60.0, gt=0, le=86_400, description="How often a running real session compares its view with the "
                                           "exchange's, besides after every candle (seconds).")

    # AI market analysis (docs/ai.md): xAI Grok through its OpenAI-compatible API; offline, sim/xai.
    xai_base_url: str = Field(
        "http://127.0.0.1:8901/v1",
        description="xAI API base URL (OpenAI-compatible, e.g. https://api.x.ai/v1); the default is the local "
                    "sim/xai that `durabot up` starts.")
    xai_api_key: SecretStr | None = Field(
        None, description="xAI API key. Unset: the local sim/xai gets a placeholder key; any other URL means no "
                          "Grok (every analysis uses the technical fallback, marked `not_configured`).")
    xai_model: str = Field("grok-4-fast", min_length=1, description="Grok model of market analyses.")
    sim_xai_port: int = Field(8901, ge=1, le=65535, description="Port of the embedded sim/xai.")
    ai_call_timeout_s: float = Field(20.0, gt=0, le=600, description="HTTP timeout of one Grok call (seconds).")
    ai_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts of one Grok call on 429, 5xx, timeouts and dropped connections.")
    ai_retry_initial_s: float = Field(
        1.0, gt=0, le=60, description="First pause before retrying a Grok call (doubling; a Retry-After wins).")
    ai_deadline_s: float = Field(
        30.0, gt=0, le=600, description="How long an analysis waits for Grok, retries included, before it uses "
                                        "the technical fallback (`deadline`).")
    ai_breaker_failures: int = Field(
        5, ge=1, le=1000, description="Failed Grok calls in a row that open the circuit breaker.")
    ai_breaker_cooldown_s: float = Field(
        60.0, gt=0, le=86_400, description="How long an open breaker sends every analysis to the fallback before "
                                          "one trial call (half-open).")
    ai_prices: str = Field(
        '{"grok-4-fast": [0.20, 0.50], "grok-4": [3.00, 15.00], "grok-3-mini": [0.30, 0.50]}',
        description="JSON: model -> [USD per million prompt tokens, USD per million completion tokens].")
    ai_daily_budget_user_usd: float = Field(
        1.0, ge=0, description="Grok spend one user may cause per UTC day; beyond it, the fallback (`over_budget`).")
    ai_daily_budget_global_usd: float = Field(
        25.0, ge=0, description="Grok spend of all users together per UTC day; beyond it, the fallback.")

    # Telegram bot (docs in sim/telegram/README.md): the Bot API, offline the sim/telegram that `up` starts.
    telegram_api_url: str = Field(
        "http://127.0.0.1:8950",
        description="Telegram Bot API base URL (online https://api.telegram.org); the default is the local "
                    "sim/telegram that `durabot up` starts.")
    telegram_bot_token: SecretStr | None = Field(
        None, description="Bot token from @BotFather. Unset: no Telegram bot (with the local sim, the sim's token "
                          "123456:SIM-telegram-token-000000000000000 works).")
    sim_telegram_port: int = Field(8950, ge=1, le=65535, description="Port of the embedded sim/telegram (its web "
                                                                     "chat is /chat).")

    @field_validator("gateways")
    @classmethod
    def _gateway_ports_fit(cls, v: int, info: ValidationInfo) -> int:
        first = info.data.get("gateway_port")
        if first is not None and first + v - 1 > 65535:
            raise ValueError(f"{v} gateways on consecutive ports from {first} (DURABOT_GATEWAY_PORT) pass 65535")
        return v

    @field_validator("mongo_uri")
    @classmethod
    def _mongo_uri_is_a_uri(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("mongodb", "mongodb+srv") or not parts.netloc:
            raise ValueError("must look like mongodb://host:port/ (or mongodb+srv://)")
        return v

    @field_validator("temporal_address")
    @classmethod
    def _temporal_address_is_host_port(cls, v: str | None) -> str | None:
        if v is None:
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. temporal.example.com:7233")
        return v

    @field_validator("sim_speed")
    @classmethod
    def _speed_is_max_or_positive(cls, v: str) -> str:
        if v != "max":
            try:
                ok = float(v) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError("must be `max` or a positive number (a multiple of real time)")
        return v

    @field_validator("feed_streams")
    @classmethod
    def _streams_are_symbol_at_interval(cls, v: str) -> str:
        for stream in filter(None, (p.strip() for p in v.split(","))):
            symbol, sep, interval = stream.partition("@")
            if not sep or not symbol.isalnum() or interval not in INTERVAL_MS:
                raise ValueError(f"{stream!r} is not SYMBOL@interval (intervals: {', '.join(INTERVAL_MS)})")
        return v

    @field_validator("sim_symbols")
    @classmethod
    def _sim_symbols_are_symbols(cls, v: str) -> str:
        if v.strip() != "all" and not all(p.strip().isalnum() for p in v.split(",")):
            raise ValueError("must be comma-separated symbols such as BTCUSDT,ETHBTC, or `all`")
        return v

    @field_validator("ai_prices")
    @classmethod
    def _prices_are_a_table(cls, v: str) -> str:
        import json

        try:
            table = json.loads(v)
        except ValueError as exc:
            raise ValueError(f"must be JSON: {exc}") from None
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(p, list) and len(p) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in p)
            for k, p in table.items()
        ):
            raise ValueError('must map each model to [prompt USD per million tokens, completion USD per million '
                             'tokens], e.g. {"grok-4-fast": [0.2, 0.5]}')
        return v

    @property
    def xai_is_local_sim(self) -> bool:
        """The default: Grok requests go to the sim/xai that `up` starts on this machine."""
        return f"127.0.0.1:{self.sim_xai_port}" in self.xai_base_url

    @property
    def telegram_is_local_sim(self) -> bool:
        """The default: Bot API calls go to the sim/telegram that `up` starts on this machine."""
        return f"127.0.0.1:{self.sim_telegram_port}" in self.telegram_api_url

    @property
    def xai_key(self) -> SecretStr | None:
        """The key Grok calls carry; None = Grok is not configured."""
        if self.xai_api_key is not None:
            return self.xai_api_key
        return SecretStr("sim-local-key") if self.xai_is_local_sim else None

    @property
    def sim_symbol_list(self) -> tuple[str, ...] | None:
        """The symbols the sim replays; None = every data file."""
        if self.sim_symbols.strip() == "all":
            return None
        return tuple(p.strip().upper() for p in self.sim_symbols.split(",") if p.strip())

    @property
    def feed_stream_list(self) -> tuple[tuple[str, str], ...]:
        pairs = (p.strip().partition("@") for p in self.feed_streams.split(",") if p.strip())
        return tuple((symbol.upper(), interval) for symbol, _, interval in pairs)

    @property
    def exchange_is_local_sim(self) -> bool:
        """The default: the exchange URLs point at the sim that `up` starts on this machine."""
        local = f"127.0.0.1:{self.sim_exchange_port}"
        return all(local in url for url in (self.exchange_rest_url, self.exchange_futures_url, self.exchange_ws_url))

    @property
    def market_source(self) -> str:
        """Names the feed (workflow ``feed:{source}``) and tags stored candles and prices."""
        if self.feed_source:
            return self.feed_source
        return "sim" if self.exchange_is_local_sim else "binance"

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def embedded_mongo(self) -> bool:
        return self.mongo_uri is None

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def mongo_target(self) -> str:
        # Retryable writes slow SecantusDB's single inserts to ~100/s after 10k writes (STACK.md),
        # and every write of ours carries a natural unique key, so retries are ours to make.
        return self.mongo_uri or f"mongodb://127.0.0.1:{self.mongo_port}/?retryWrites=false&directConnection=true"

    @property
    def temporal_ui_target(self) -> str | None:
        if self.temporal_ui_url:
            return self.temporal_ui_url
        return f"http://127.0.0.1:{self.temporal_ui_port}" if self.embedded_temporal else None

    @property
    def gateway_url(self) -> str:
        host = "127.0.0.1" if self.gateway_host in ("0.0.0.0", "::") else self.gateway_host
        return f"http://{host}:{self.gateway_port}"

    @property
    def mcp_url(self) -> str:
        """The MCP resource: where clients call it and the audience of the tokens issued for it."""
        if self.mcp_public_url:
            return self.mcp_public_url.rstrip("/")
        host = "127.0.0.1" if self.gateway_host in ("0.0.0.0", "::") else self.gateway_host
        return f"http://{host}:{self.mcp_port}/mcp"


@lru_cache
def get_settings() -> Settings:
    return Settings()
