"""The settings document: one versioned JSON file a paper session exports and a backtest takes unchanged.

    {"format": "durabot-settings", "version": 1, "market": "binance", "symbols": ["BTCUSDT"],
     "interval": "5m", "engine": EngineSettings.to_dict(), "analysis": AnalysisSettings.to_dict()}

``market`` names the market data the settings were used on (a session's feed source: ``binance``,
``sim``, …); a backtest records it and reads its candles from files or stored data all the same.
``engine`` and ``analysis`` may leave fields out: they keep their defaults (``risk`` and each
strategy's parameters merge field by field), so a hand-written file can hold only what it changes.
``serialise`` always writes every field.

A refusal is a ``SettingsDocumentError`` whose ``field`` is the setting's path in the document
(``engine.leverage``, ``analysis.rsi.length``, ``symbols``) and whose ``reason`` says what is wrong in
the user's words: never a Python class or type name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from trading.analysis_settings import PARAMS_TYPE, AnalysisSettings
from trading.candle import INTERVAL_MS
from trading.errors import InvalidInput
from trading.models import SymbolSpec
from trading.settings import EngineSettings, RiskSettings

FORMAT = "durabot-settings"
VERSION = 1
TOP_LEVEL = ("format", "version", "market", "symbols", "interval", "engine", "analysis")
MAX_SYMBOLS = 20
DEFAULT_MARKET = "binance"
_MARKET = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
# The domain's own messages start with "setting leverage: " or "RsiParams.length "; the field
# already says which setting, so the reason keeps only what follows.
_PREFIX = re.compile(r"^(setting [\w.]+: |[A-Z][A-Za-z]*(\.\w+)+ |[A-Z][A-Za-z]*( [A-Z0-9]+)?: )")


class SettingsDocumentError(InvalidInput):
    """``field``: the setting's path in the document (None: the document as a whole)."""

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


@dataclass(frozen=True)
class SettingsDocument:
    symbols: tuple[str, ...]
    interval: str
    engine: EngineSettings
    analysis: AnalysisSettings
    market: str = DEFAULT_MARKET

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "market": self.market, "symbols": list(self.symbols),
                "interval": self.interval, "engine": self.engine.to_dict(), "analysis": self.analysis.to_dict()}


def serialise(document: SettingsDocument) -> str:
    """Canonical, human-readable JSON (sorted keys, two-space indent, a final newline)."""
    return json.dumps(document.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"


def loads(text: str | bytes) -> SettingsDocument:
    """Parse and validate a document from JSON text (NaN and Infinity are not JSON numbers)."""

    def no_constant(name: str) -> None:
        raise SettingsDocumentError(None, f"not valid JSON: {name} is not a number")

    try:
        data = json.loads(text, parse_constant=no_constant)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        if isinstance(exc, SettingsDocumentError):
            raise
        raise SettingsDocumentError(None, f"not valid JSON: {exc}") from None
    return parse(data)


def parse(data: Any) -> SettingsDocument:
    """Validate a decoded document (a dict); every refusal names the setting and the reason."""
    if not isinstance(data, Mapping):
        raise SettingsDocumentError(None, f"a settings document is a JSON object, got {_kind(data)}")
    unknown = sorted(k for k in data if k not in TOP_LEVEL)
    if unknown:
        raise SettingsDocumentError(str(unknown[0]),
                                    f"unknown setting; a settings document holds {', '.join(TOP_LEVEL)}")
    if data.get("format") != FORMAT:
        raise SettingsDocumentError("format", f"must be {FORMAT!r}, got {data.get('format')!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SettingsDocumentError("version", f"must be a whole number >= 1, got {version!r}")
    if version > VERSION:
        raise SettingsDocumentError("version", f"version {version} was written by a newer Durabot; this one reads "
                                               f"version {VERSION}")
    market = data.get("market", DEFAULT_MARKET)
    if not isinstance(market, str) or not _MARKET.match(market):
        raise SettingsDocumentError("market", f"must be a short lower-case name such as 'binance', got {market!r}")
    symbols = _symbols(data.get("symbols"))
    interval = data.get("interval")
    if interval not in INTERVAL_MS:
        raise SettingsDocumentError("interval", f"must be one of {', '.join(INTERVAL_MS)}, got {interval!r}")
    engine = _engine(data.get("engine", {}))
    analysis = _analysis(data.get("analysis", {}))
    return SettingsDocument(symbols, str(interval), engine, analysis, market)


def document_of(record: Mapping[str, Any], market: str | None = None) -> SettingsDocument:
    """The document of a session's saved settings (``paper_trading_settings``: source, symbols,
    interval, engine_settings, analysis_settings), validated as any other."""
    return parse({"format": FORMAT, "version": VERSION, "market": market or record.get("source") or DEFAULT_MARKET,
                  "symbols": list(record.get("symbols") or ()), "interval": record.get("interval"),
                  "engine": record.get("engine_settings") or {}, "analysis": record.get("analysis_settings") or {}})


# -- sections -------------------------------------------------------------------------------------
def _symbols(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SettingsDocumentError("symbols", f"must be a non-empty list of symbols such as ['BTCUSDT'], "
                                               f"got {_shown(value)}")
    if len(value) > MAX_SYMBOLS:
        raise SettingsDocumentError("symbols", f"at most {MAX_SYMBOLS} symbols, got {len(value)}")
    for symbol in value:
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
            raise SettingsDocumentError("symbols", f"{symbol!r} is not a symbol such as 'BTCUSDT' "
                                                   "(2-20 upper-case letters and digits)")
    if len(set(value)) != len(value):
        raise SettingsDocumentError("symbols", f"lists a symbol twice: {value}")
    return tuple(value)


def _engine(value: Any) -> EngineSettings:
    section = _section("engine", value)
    _check_types("engine", section, _shapes(EngineSettings))
    if isinstance(section.get("risk"), Mapping):
        _check_types("engine.risk", section["risk"], _shapes(RiskSettings))
    for k, spec in enumerate(section.get("symbols") or ()):
        where = f"engine.symbols[{k}]"
        _check_types(where, _section(where, spec), _shapes(SymbolSpec))
        if "symbol" not in spec:
            raise SettingsDocumentError(f"{where}.symbol", "is required")
        _spec(where, spec)
    merged = {**EngineSettings().to_dict(), **section}
    if "risk" in section:
        merged["risk"] = {**EngineSettings().to_dict()["risk"], **section["risk"]}
    return _built("engine", lambda: EngineSettings.from_dict(merged))


def _analysis(value: Any) -> AnalysisSettings:
    section = _section("analysis", value)
    _check_types("analysis", section, _shapes(AnalysisSettings))
    defaults = AnalysisSettings().to_dict()
    merged = dict(defaults)
    for key, part in section.items():
        if key in PARAMS_TYPE:
            where = f"analysis.{key}"
            _check_types(where, _section(where, part), _shapes(PARAMS_TYPE[key]))
            merged[key] = {**defaults[key], **part}
        else:
            merged[key] = part
    weights = section.get("weights")
    if isinstance(weights, Mapping):
        for name, weight in weights.items():
            if not _is_number(weight):
                raise SettingsDocumentError(f"analysis.weights.{name}", f"must be a number, got {_shown(weight)}")
    return _built("analysis", lambda: AnalysisSettings.from_dict(merged))


def _spec(where: str, spec: Mapping[str, Any]) -> SymbolSpec:
    return _built(where, lambda: SymbolSpec(**spec))


def _section(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingsDocumentError(where, f"must be an object of settings, got {_shown(value)}")
    return value


def _built[T](where: str, build: Callable[[], T]) -> T:
    """Run a domain constructor; its refusal is reported at the setting's path, in the user's words."""
    try:
        return build()
    except InvalidInput as exc:
        field = exc.field if exc.field and exc.field != "settings" else None
        raise SettingsDocumentError(f"{where}.{field}" if field else where, _plain(exc.reason)) from None
    except (ValueError, TypeError) as exc:
        raise SettingsDocumentError(where, _plain(str(exc))) from None


def _plain(reason: str) -> str:
    reason = _PREFIX.sub("", reason, count=1)
    # "MacdParams.fast (30) must be below slow (26)" has lost its subject to the prefix: the value stays.
    return re.sub(r"^\(([^)]*)\) ", r"\1 ", reason)


# -- JSON types, from the settings classes' own annotations ------------------------------------------
# An annotation maps to (what the user is told, the check). Enum-valued settings are strings whose
# values the settings class itself checks (naming the known ones); nested objects are checked apart.
_NUMBER = "a number"
_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "int": ("a whole number", lambda v: _is_int(v)),
    "float": (_NUMBER, lambda v: _is_number(v)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "tuple[str, ...]": ("a list of names", lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)),
    "dict[str, float]": ("an object of numbers", lambda v: isinstance(v, Mapping)),
    "RiskSettings": ("an object of settings", lambda v: isinstance(v, Mapping)),
    "tuple[SymbolSpec, ...]": ("a list of objects", lambda v: isinstance(v, list)),
    **{t.__name__: ("an object of settings", lambda v: isinstance(v, Mapping)) for t in PARAMS_TYPE.values()},
}


_ANYTHING: tuple[str, Callable[[Any], bool]] = ("", lambda v: True)
_STRING: tuple[str, Callable[[Any], bool]] = ("a string", lambda v: isinstance(v, str))


def _shapes(cls: type) -> dict[str, tuple[str, Callable[[Any], bool]]]:
    shapes: dict[str, tuple[str, Callable[[Any], bool]]] = {}
    for f in fields(cls):
        annotation = str(f.type).replace(" ", "")
        nullable = annotation.endswith("|None")
        base = annotation.removesuffix("|None").replace(",", ", ")
        # Choices (market, funding_mode, …) are strings whose values the settings class checks,
        # naming the known ones; a type this table does not know is left to the class alone.
        known = _STRING if isinstance(f.default, Enum) else _CHECKS.get(base, _ANYTHING)
        shapes[f.name] = _or_null(known) if nullable else known
    return shapes


def _or_null(shape: tuple[str, Callable[[Any], bool]]) -> tuple[str, Callable[[Any], bool]]:
    what, check = shape
    return f"{what} or null", lambda v: v is None or check(v)


def _check_types(where: str, section: Mapping[str, Any], shapes: Mapping[str, tuple[str, Callable[[Any], bool]]]
                 ) -> None:
    for key, value in section.items():
        if key not in shapes:
            raise SettingsDocumentError(f"{where}.{key}", f"unknown setting; known: {', '.join(sorted(shapes))}")
        what, check = shapes[key]
        if not check(value):
            raise SettingsDocumentError(f"{where}.{key}", f"must be {what}, got {_shown(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), "something else")


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."
