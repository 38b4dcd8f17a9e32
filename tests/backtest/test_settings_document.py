"""The settings document: what serialise writes parses back to the same settings, a session's saved
settings become one, and every bad document is refused naming the setting (its path in the
document) and the reason in the user's words, never a Python class or type name."""

from __future__ import annotations

import json
import re

import pytest

from core.settings_document import (
    FORMAT,
    VERSION,
    SettingsDocument,
    SettingsDocumentError,
    document_of,
    loads,
    parse,
    serialise,
)
from trading.analysis_settings import AnalysisSettings
from trading.models import SymbolSpec
from trading.settings import EngineSettings, MarketType

BASE = {"format": FORMAT, "version": VERSION, "symbols": ["BTCUSDT"], "interval": "5m"}


def test_serialise_writes_every_field_and_parses_back_to_equal_settings():
    document = SettingsDocument(
        ("ETHBTC", "LTCBTC"), "15m",
        EngineSettings(leverage=3, trailing_stop_pct=1.5, symbols=(SymbolSpec("ETHBTC", 1e-6, 0.001, 0.0001),)),
        AnalysisSettings(min_agree=2, enabled=("rsi", "macd", "bollinger"), weights={"rsi": 2.0}), "sim")
    text = serialise(document)
    assert loads(text) == document and loads(text.encode()) == document
    data = json.loads(text)
    assert set(data) == {"format", "version", "market", "symbols", "interval", "engine", "analysis"}
    assert data["engine"] == document.engine.to_dict() and data["analysis"] == document.analysis.to_dict()
    assert serialise(loads(text)) == text  # canonical


def test_omitted_settings_keep_their_defaults_and_sections_merge_field_by_field():
    document = parse({**BASE, "engine": {"leverage": 5, "risk": {"max_daily_loss_pct": 2.0}},
                      "analysis": {"rsi": {"length": 10}}})
    assert document.market == "binance"
    assert document.engine == EngineSettings(leverage=5).with_risk(max_daily_loss_pct=2.0)
    assert document.analysis.rsi.length == 10 and document.analysis.rsi.oversold == 30.0
    assert document.analysis.macd == AnalysisSettings().macd


def test_a_sessions_saved_settings_are_a_document():
    record = {"source": "sim", "symbols": ["ETHBTC"], "interval": "5m",
              "engine_settings": EngineSettings(market=MarketType.SPOT, leverage=1).to_dict(),
              "analysis_settings": AnalysisSettings(min_agree=4).to_dict()}
    document = document_of(record)
    assert (document.market, document.symbols, document.interval) == ("sim", ("ETHBTC",), "5m")
    assert document.engine.market is MarketType.SPOT and document.analysis.min_agree == 4
    assert document_of(record, market="binance").market == "binance"


BAD: list[tuple[object, str | None, str]] = [
    ("[1]", None, "a settings document is a JSON object, got a list"),
    ({**BASE, "format": "freqtrade"}, "format", "must be 'durabot-settings'"),
    ({k: v for k, v in BASE.items() if k != "format"}, "format", "must be 'durabot-settings', got None"),
    ({**BASE, "version": 2}, "version", "written by a newer Durabot"),
    ({**BASE, "version": "1"}, "version", "must be a whole number >= 1"),
    ({**BASE, "pairs": ["BTCUSDT"]}, "pairs", "unknown setting"),
    ({**BASE, "market": "Binance Futures"}, "market", "short lower-case name"),
    ({**BASE, "symbols": []}, "symbols", "non-empty list"),
    ({**BASE, "symbols": "BTCUSDT"}, "symbols", "non-empty list"),
    ({**BASE, "symbols": ["btc/usdt"]}, "symbols", "'btc/usdt' is not a symbol"),
    ({**BASE, "symbols": ["BTCUSDT", "BTCUSDT"]}, "symbols", "twice"),
    ({**BASE, "interval": "7m"}, "interval", "must be one of 1m"),
    ({**BASE, "engine": []}, "engine", "must be an object of settings, got []"),
    ({**BASE, "engine": {"leverage": 0}}, "engine.leverage", "Leverage must be a whole number from 1 to 125x, got 0"),
    ({**BASE, "engine": {"leverage": "5"}}, "engine.leverage", 'must be a whole number, got "5"'),
    ({**BASE, "engine": {"leverage": 2.5}}, "engine.leverage", "must be a whole number"),
    ({**BASE, "engine": {"leverage": True}}, "engine.leverage", "must be a whole number, got true"),
    ({**BASE, "engine": {"taker_fee": "0.1%"}}, "engine.taker_fee", "must be a number"),
    ({**BASE, "engine": {"taker_fee": 0.5}}, "engine.taker_fee",
     "Taker fee must be a number at least -0.01 and below 0.1, got 0.5"),
    ({**BASE, "engine": {"market": 1}}, "engine.market", "must be a string, got 1"),
    ({**BASE, "engine": {"market": "margin"}}, "engine.market",
     "Market type must be one of futures, spot, got 'margin'"),
    ({**BASE, "engine": {"market": "spot", "leverage": 3}}, "engine.leverage",
     "Leverage must be 1 on a spot account, got 3"),
    ({**BASE, "engine": {"stop_loss_pct": None}}, "engine.stop_loss_pct", "Stop loss is required while the risk check"),
    ({**BASE, "engine": {"take_profit_pct": "4"}}, "engine.take_profit_pct", "must be a number or null"),
    ({**BASE, "engine": {"close_on_opposite_signal": "yes"}}, "engine.close_on_opposite_signal", "true or false"),
    ({**BASE, "engine": {"lev": 3}}, "engine.lev", "unknown setting; known:"),
    ({**BASE, "engine": {"risk": 1}}, "engine.risk", "must be an object of settings"),
    ({**BASE, "engine": {"risk": {"max_correlation": 2}}}, "engine.risk.max_correlation",
     "Largest correlation must be a number from -1 to 1, got 2"),
    ({**BASE, "engine": {"risk": {"enabled": ["astrology"]}}}, "engine.risk.enabled", "unknown checks"),
    ({**BASE, "engine": {"risk": {"cooldown": 5}}}, "engine.risk.cooldown", "unknown setting"),
    ({**BASE, "engine": {"symbols": [{"symbol": "BTCUSDT", "tick_size": -1}]}}, "engine.symbols[0]",
     "tick_size must be a finite number >= 0"),
    ({**BASE, "engine": {"symbols": [{"tick_size": 0.1}]}}, "engine.symbols[0].symbol", "is required"),
    ({**BASE, "engine": {"symbols": [{"symbol": "X", "lot": 1}]}}, "engine.symbols[0].lot", "unknown setting"),
    ({**BASE, "engine": {"position_sizing": "fixed_quantity"}}, "engine.fixed_quantity",
     "Fixed quantity must be above 0 with fixed_quantity sizing"),
    ({**BASE, "analysis": "rsi"}, "analysis", "must be an object of settings"),
    ({**BASE, "analysis": {"rsi": {"length": 1}}}, "analysis.rsi.length",
     "RSI length must be a whole number from 2 to 100 candles, got 1"),
    ({**BASE, "analysis": {"rsi": {"period": 14}}}, "analysis.rsi.period", "unknown setting"),
    ({**BASE, "analysis": {"rsi": 14}}, "analysis.rsi", "must be an object of settings, got 14"),
    ({**BASE, "analysis": {"macd": {"fast": 30}}}, "analysis.macd.fast",
     "MACD fast length (30) must be below the MACD slow length (26)"),
    ({**BASE, "analysis": {"stochastic": {"oversold": 90}}}, "analysis.stochastic.oversold", "must be below"),
    ({**BASE, "analysis": {"min_agree": 6}}, "analysis.min_agree",
     "Strategies that must agree must be a whole number from 1 to 5"),
    ({**BASE, "analysis": {"enabled": "rsi"}}, "analysis.enabled", "must be a list of names"),
    ({**BASE, "analysis": {"enabled": ["rsi", "tarot"]}}, "analysis.enabled", "unknown strategies ['tarot']"),
    ({**BASE, "analysis": {"weights": {"rsi": "heavy"}}}, "analysis.weights.rsi", "must be a number"),
    ({**BASE, "analysis": {"weights": {"tarot": 1}}}, "analysis.weights", "unknown strategy 'tarot'"),
    ({**BASE, "analysis": {"min_vote_weight": 2.0}}, "analysis.min_vote_weight", "only applies together with"),
    ("{", None, "not valid JSON"),
    ('{"format": "durabot-settings", "version": NaN}', None, "NaN is not a number"),
    (b"\xff\xfe", None, "not valid JSON"),
]
# A Python class or type name in a reason: CamelCase words (RsiParams, EngineSettings, MarketType),
# or the builtins' names.
CLASS_NAME = re.compile(r"\b([A-Z][a-z0-9]+){2,}\b|\b(int|float|bool|str|dict|NoneType|tuple)\b")


@pytest.mark.parametrize(("document", "field", "reason"), BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_every_bad_document_is_refused_naming_the_setting_and_the_reason(document, field, reason):
    with pytest.raises(SettingsDocumentError) as info:
        loads(document) if isinstance(document, (str, bytes)) else parse(document)
    error = info.value
    assert error.field == field, error
    assert reason in error.reason, error
    assert not CLASS_NAME.search(error.reason.replace("Durabot", "")), error.reason
    assert str(error) == (f"{field}: {error.reason}" if field else error.reason)
