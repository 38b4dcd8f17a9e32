"""Settings of one sim/telegram instance: where it listens, the bot it plays, and what it keeps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / "var" / "sim-telegram"
DEFAULT_TOKEN = "123456:SIM-telegram-token-000000000000000"

# Telegram's token shape: the bot's numeric id, a colon, a secret of letters, digits, '_' and '-'.
TOKEN_SHAPE = re.compile(r"^(\d{1,19}):([A-Za-z0-9_-]{1,})$")
USERNAME_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


@dataclass(frozen=True)
class SimTelegramConfig:
    """``token``: the one bot token the Bot API accepts (any other answers 401); the bot's user id is its
    numeric prefix, as on Telegram. ``state_dir``: where users, chats and the update queue persist across
    restarts (None: memory only). ``first_update_id``: the first update id of a fresh queue (None: a random
    one, as Telegram picks). ``privacy_mode``: in groups the bot sees only commands and replies to it, as
    with Telegram's default. ``throttle_repeated_polls``: Telegram's answer to busy polling (a getUpdates
    with the offset of the previous call waits at least 3 s when that call started under 3 s ago).
    ``callback_query_ttl_s``: an unanswered callback query can no longer be answered after this long
    (None: never expires)."""

    host: str = "127.0.0.1"
    port: int = 8950
    state_dir: Path | None = None
    token: str = DEFAULT_TOKEN
    bot_username: str = "durabot_sim_bot"
    bot_first_name: str = "Durabot (sim)"
    privacy_mode: bool = True
    first_update_id: int | None = None
    throttle_repeated_polls: bool = True
    callback_query_ttl_s: float | None = None
    max_logged_requests: int = 10_000
    max_body_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if self.state_dir is not None:
            object.__setattr__(self, "state_dir", Path(self.state_dir))
        if not TOKEN_SHAPE.match(self.token):
            raise ValueError("token must have Telegram's shape <bot id>:<secret>, e.g. " + DEFAULT_TOKEN)
        if not USERNAME_SHAPE.match(self.bot_username) or not self.bot_username.lower().endswith("bot"):
            raise ValueError("bot_username must be 5-32 letters, digits or '_' and end with 'bot'")
        if not self.bot_first_name.strip():
            raise ValueError("bot_first_name must not be empty")
        if self.first_update_id is not None and not 1 <= self.first_update_id < 2**31 - 1:
            raise ValueError("first_update_id must be between 1 and 2**31 - 2")
        if self.callback_query_ttl_s is not None and self.callback_query_ttl_s <= 0:
            raise ValueError("callback_query_ttl_s must be positive (or None)")
        for name in ("max_logged_requests", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])
