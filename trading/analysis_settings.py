"""Analysis settings: the five strategies' parameters, which strategies vote, how many must agree.

Plain Python (no numpy or pandas), so Temporal workflows can hold, validate and hash these settings;
``trading.analysis`` and ``trading.strategies`` compute with them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from trading.errors import InvalidInput
from trading.setting_catalog import INTEGER, SETTINGS, check, label

RSI, MACD, BOLLINGER, VOLUME, STOCHASTIC = "rsi", "macd", "bollinger", "volume", "stochastic"
STRATEGY_NAMES: tuple[str, ...] = (RSI, MACD, BOLLINGER, VOLUME, STOCHASTIC)


def _field(owner: object, name: str) -> str:
    """The settings path of ``owner.name`` as the API names it: ``rsi.length``, ``min_agree``."""
    section = next((key for key, kind in PARAMS_TYPE.items() if isinstance(owner, kind)), None)
    return f"{section}.{name}" if section else name


def _check(owner: object, name: str) -> None:
    """The catalog's range; numbers that may be fractional are stored as float so equal settings hash
    equally."""
    path = _field(owner, name)
    value = getattr(owner, name)
    check(path, value)
    if SETTINGS[path].kind != INTEGER:
        object.__setattr__(owner, name, float(value))


def _check_band(owner: object, low: str, high: str) -> None:
    low_value, high_value = getattr(owner, low), getattr(owner, high)
    if low_value >= high_value:
        raise InvalidInput(_field(owner, low), f"{label(_field(owner, low))} ({low_value:g}) must be below the "
                                               f"{label(_field(owner, high))} ({high_value:g})")


@dataclass(frozen=True, slots=True)
class RsiParams:
    length: int = 14
    oversold: float = 30.0
    overbought: float = 70.0

    def __post_init__(self) -> None:
        _check(self, "length")
        _check(self, "oversold")
        _check(self, "overbought")
        _check_band(self, "oversold", "overbought")


@dataclass(frozen=True, slots=True)
class MacdParams:
    fast: int = 12
    slow: int = 26
    signal: int = 9

    def __post_init__(self) -> None:
        _check(self, "fast")
        _check(self, "slow")
        _check(self, "signal")
        if self.fast >= self.slow:
            raise InvalidInput("macd.fast", f"{label('macd.fast')} ({self.fast}) must be below the "
                                            f"{label('macd.slow')} ({self.slow})")


@dataclass(frozen=True, slots=True)
class BollingerParams:
    length: int = 20
    std: float = 2.0

    def __post_init__(self) -> None:
        _check(self, "length")
        _check(self, "std")


@dataclass(frozen=True, slots=True)
class VolumeParams:
    length: int = 20
    min_ratio: float = 1.5

    def __post_init__(self) -> None:
        _check(self, "length")
        _check(self, "min_ratio")


@dataclass(frozen=True, slots=True)
class StochasticParams:
    k: int = 14
    d: int = 3
    smooth_k: int = 3
    oversold: float = 20.0
    overbought: float = 80.0

    def __post_init__(self) -> None:
        _check(self, "k")
        _check(self, "d")
        _check(self, "smooth_k")
        _check(self, "oversold")
        _check(self, "overbought")
        _check_band(self, "oversold", "overbought")


type StrategyParams = RsiParams | MacdParams | BollingerParams | VolumeParams | StochasticParams
PARAMS_TYPE: dict[str, type[StrategyParams]] = {
    RSI: RsiParams,
    MACD: MacdParams,
    BOLLINGER: BollingerParams,
    VOLUME: VolumeParams,
    STOCHASTIC: StochasticParams,
}


def params_to_dict(params: StrategyParams) -> dict[str, int | float]:
    return {f.name: getattr(params, f.name) for f in fields(params)}


# Bump when a change to indicators, strategies or consensus changes any signal: it is part of
# the settings hash, so analyses cached under the old logic are not mistaken for new ones.
ANALYSIS_VERSION = 1
AI_FIELDS = ("ai_mode", "ai_weight", "ai_min_confidence", "ai_deadline_s")
SEED_WEIGHT_TOLERANCE = 0.01


@dataclass(frozen=True)
class AnalysisSettings:
    """Indicator and strategy parameters, which strategies vote, and how many must agree."""

    rsi: RsiParams = field(default_factory=RsiParams)
    macd: MacdParams = field(default_factory=MacdParams)
    bollinger: BollingerParams = field(default_factory=BollingerParams)
    volume: VolumeParams = field(default_factory=VolumeParams)
    stochastic: StochasticParams = field(default_factory=StochasticParams)
    enabled: tuple[str, ...] = STRATEGY_NAMES
    min_agree: int = 3
    weights: dict[str, float] | None = None  # strategy → weight; disabled strategies' weights are ignored
    min_vote_weight: float | None = None  # weighted threshold; default: min_agree's share of the weight
    atr_length: int = 14  # for the indicator frame (stops, charts); no strategy votes on it
    # Grok's part in the decision (trading.ai_modes); not in the settings hash: the technical
    # analysis of a candle is the same whatever Grok's part.
    ai_mode: str = "off"
    ai_weight: float = 1.0
    ai_min_confidence: float = 0.0
    ai_deadline_s: float = 30.0

    def __post_init__(self) -> None:
        for name, params_type in PARAMS_TYPE.items():
            if not isinstance(getattr(self, name), params_type):
                raise InvalidInput(
                    name, f"the {name} settings must be an object of its parameters, got {getattr(self, name)!r}"
                )
        self._set("enabled", self._checked_enabled())
        n = len(self.enabled)
        if (
            isinstance(self.min_agree, bool)
            or not isinstance(self.min_agree, int)
            or not 1 <= self.min_agree <= n
        ):
            raise InvalidInput(
                "min_agree", f"{label('min_agree')} must be a whole number from 1 to {n} "
                f"(the strategies that vote), got {self.min_agree!r}"
            )
        self._set("weights", self._checked_weights())
        self._set("min_vote_weight", self._checked_min_vote_weight())
        check("atr_length", self.atr_length)
        for name in AI_FIELDS:
            check(name, getattr(self, name))
            if name != "ai_mode":
                self._set(name, float(getattr(self, name)))

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _checked_enabled(self) -> tuple[str, ...]:
        enabled = self.enabled
        if isinstance(enabled, str) or not isinstance(enabled, Sequence):
            raise InvalidInput("enabled", f"{label('enabled')} must be a list of strategy names, got {enabled!r}")
        unknown = [s for s in enabled if s not in STRATEGY_NAMES]
        if unknown:
            raise InvalidInput(
                "enabled", f"{label('enabled')} has unknown strategies {unknown}; "
                f"known: {', '.join(STRATEGY_NAMES)}"
            )
        if len(set(enabled)) != len(enabled):
            raise InvalidInput("enabled", f"{label('enabled')} lists a strategy twice: {list(enabled)}")
        if not enabled:
            raise InvalidInput("enabled", f"{label('enabled')} must name at least one strategy")
        return tuple(s for s in STRATEGY_NAMES if s in enabled)

    def _checked_weights(self) -> dict[str, float] | None:
        if self.weights is None:
            return None
        if not isinstance(self.weights, Mapping):
            raise InvalidInput(
                "weights", f"Strategy weights must map strategy names to weights, got {self.weights!r}"
            )
        checked: dict[str, float] = {}
        for name in sorted(self.weights):
            weight = self.weights[name]
            if name not in STRATEGY_NAMES:
                raise InvalidInput(
                    "weights", f"Strategy weights name an unknown strategy {name!r}; "
                    f"known: {', '.join(STRATEGY_NAMES)}"
                )
            try:
                check("weights", weight)
            except InvalidInput as exc:
                raise InvalidInput("weights", f"{name}: {exc.reason}") from None
            checked[name] = float(weight)
        return checked

    def _checked_min_vote_weight(self) -> float | None:
        value = self.min_vote_weight
        if value is None:
            return None
        if self.weights is None:
            raise InvalidInput("min_vote_weight",
                               f"{label('min_vote_weight')} only applies together with strategy weights")
        total = sum(self.enabled_weights().values())
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= total:
            raise InvalidInput(
                "min_vote_weight", f"{label('min_vote_weight')} must be above 0 and at most the voting "
                f"strategies' total weight {total:g}, got {value!r}"
            )
        return float(value)

    def enabled_weights(self) -> dict[str, float]:
        return {name: (self.weights or {}).get(name, 1.0) for name in self.enabled}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form; ``from_dict(to_dict())`` gives equal settings."""
        return {
            **{name: params_to_dict(getattr(self, name)) for name in PARAMS_TYPE},
            "enabled": list(self.enabled),
            "min_agree": self.min_agree,
            "weights": None if self.weights is None else dict(self.weights),
            "min_vote_weight": self.min_vote_weight,
            "atr_length": self.atr_length,
            **{name: getattr(self, name) for name in AI_FIELDS},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalysisSettings:
        """Settings from a plain mapping (API body, stored document); omitted fields keep defaults."""
        known = {*PARAMS_TYPE, "enabled", "min_agree", "weights", "min_vote_weight", "atr_length", *AI_FIELDS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput("settings", f"unknown analysis settings fields: {unknown}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in PARAMS_TYPE:
                kwargs[key] = _params_from(key, value)
            elif key == "enabled" and isinstance(value, list):
                kwargs[key] = tuple(value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def __hash__(self) -> int:
        # The generated hash would fail on the weights dict; equal settings share a canonical form.
        return hash(self.settings_hash())

    def settings_hash(self) -> str:
        """sha256 of the canonical JSON form (and ``ANALYSIS_VERSION``): stable across processes."""
        technical = {k: v for k, v in self.to_dict().items() if k not in AI_FIELDS}
        canonical = json.dumps(
            {"analysis_version": ANALYSIS_VERSION, **technical},
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _params_from(name: str, value: object) -> Any:
    params_type = PARAMS_TYPE[name]
    if not isinstance(value, Mapping):
        raise InvalidInput(name, f"analysis settings field {name!r} must be an object, got {value!r}")
    allowed = set(params_to_dict(params_type()))
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidInput(name, f"unknown {name} settings fields: {unknown}; known: {sorted(allowed)}")
    return params_type(**value)


def _settle(alpha: float) -> int:
    """Candles after its seed until an exponential smoother's seed weighs less than the tolerance."""
    return math.ceil(math.log(SEED_WEIGHT_TOLERANCE) / math.log(1.0 - alpha))


def strategy_warmup(name: str, settings: AnalysisSettings) -> int:
    """Candles from the anchor before this strategy's verdict is defined and settled."""
    if name == RSI:
        p = settings.rsi
        return p.length + _settle(1.0 / p.length)
    if name == MACD:
        m = settings.macd
        first_histogram = (m.slow - 1) + (m.signal - 1)
        return first_histogram + 1 + _settle(2.0 / (m.slow + 1)) + _settle(2.0 / (m.signal + 1))
    if name == BOLLINGER:
        return settings.bollinger.length - 1
    if name == VOLUME:
        return settings.volume.length
    if name == STOCHASTIC:
        s = settings.stochastic
        return (s.k - 1) + (s.smooth_k - 1) + (s.d - 1) + 1
    raise ValueError(f"unknown strategy {name!r}")


def warmup_candles(settings: AnalysisSettings) -> int:
    """The warm-up gate: candles from the anchor before signals are trusted (first signal's index)."""
    return max(strategy_warmup(name, settings) for name in settings.enabled)
