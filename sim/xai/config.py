"""Settings of one sim/xai instance and the models it serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / "var" / "sim-xai"

# Model id → release date (epoch seconds), as ``GET /v1/models`` lists them. Fixed, so listings are stable.
DEFAULT_MODELS: dict[str, int] = {
    "grok-4": 1752019200,
    "grok-4-fast": 1758153600,
    "grok-3-mini": 1743724800,
}


@dataclass(frozen=True)
class SimXaiConfig:
    """``api_keys``: when set, only these bearer keys are accepted (any non-empty key otherwise).
    ``state_dir``: where the request log and usage totals persist across restarts (None: memory only)."""

    host: str = "127.0.0.1"
    port: int = 8901
    state_dir: Path | None = None
    api_keys: tuple[str, ...] | None = None
    models: tuple[str, ...] = tuple(DEFAULT_MODELS)
    max_logged_requests: int = 10_000
    max_body_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.state_dir is not None:
            object.__setattr__(self, "state_dir", Path(self.state_dir))
        if self.api_keys is not None:
            keys = tuple(self.api_keys)
            if not keys or not all(isinstance(k, str) and k for k in keys):
                raise ValueError("api_keys must be a non-empty tuple of non-empty strings (or None for any key)")
            object.__setattr__(self, "api_keys", keys)
        if not self.models:
            raise ValueError("models must name at least one model")
        object.__setattr__(self, "models", tuple(self.models))
        for name in ("max_logged_requests", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def model_created(self, model: str) -> int:
        return DEFAULT_MODELS.get(model, 1735689600)
