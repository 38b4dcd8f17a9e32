"""``durabot backtest`` in process (typer's runner): the report it prints and writes equals the
report computed directly, --config and the overrides land in the settings used, --timerange reads
freqtrade's form with open ends, several --data files trade in one account, piped output is never
cut, and every bad input is one line on stderr with exit code 2 (never a traceback)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from core.settings_document import FORMAT, parse
from durabot.backtest_cmd import register
from trading.analysis import compute_signal_series
from trading.backtest_multi import backtest_symbols
from trading.backtest_report import CSV_COLUMNS, TABLES, report_for, report_json, report_parameters
from trading.simple_signals import sma_cross

from .conftest import CANDLES, dataset, ms

BTC = str(CANDLES / "BTCUSDT-5m-2023-01.csv.gz")
ETH, LTC = str(CANDLES / "ETHBTC-5m-2018-01.csv.gz"), str(CANDLES / "LTCBTC-5m-2018-01.csv.gz")
DOCUMENT = {"format": FORMAT, "version": 1, "symbols": ["ETHBTC", "LTCBTC"], "interval": "5m",
            "engine": {"leverage": 3, "slippage_bps": 1.0}, "analysis": {"min_agree": 2}}


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer from collapsing the app into one command
        """Unused."""

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["backtest", *args])

    return invoke


def write_config(tmp_path: Path, document: dict, name: str = "settings.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_config_and_several_files_give_the_direct_report_as_json_and_csv(cli, tmp_path):
    config = write_config(tmp_path, DOCUMENT)
    outputs = []
    for n in (1, 2):
        out, trades = tmp_path / f"run{n}.json", tmp_path / f"run{n}.csv"
        result = cli("--config", config, "--data", ETH, "--data", LTC, "--timerange", "20180112-20180116",
                     "--json", str(out), "--csv", str(trades))
        assert result.exit_code == 0, result.output
        outputs.append((out.read_bytes(), trades.read_bytes(), result.stdout))
    assert outputs[0][:2] == outputs[1][:2]  # byte-stable

    document = parse(DOCUMENT)
    candles = {s: dataset(f"{s}-5m-2018-01.csv.gz") for s in document.symbols}
    signals = {s: compute_signal_series(c, document.analysis) for s, c in candles.items()}
    start, stop = ms("2018-01-12T00:00"), ms("2018-01-16T00:00")
    run = backtest_symbols(candles, signals, document.engine, trade_from=start, trade_to=stop)
    parameters = report_parameters(document.to_dict(), document.analysis, trade_from=start, trade_to=stop)
    expected = report_for(run, candles, "5m", parameters)
    json_bytes, csv_bytes, stdout = outputs[0]
    assert json_bytes.decode() == report_json(expected) + "\n"
    report = json.loads(json_bytes)
    assert len(report["trades"]) > 20 and {t["symbol"] for t in report["trades"]} == {"ETHBTC", "LTCBTC"}
    assert report["parameters"]["settings"]["engine"]["leverage"] == 3
    assert report["parameters"]["settings"]["engine"]["slippage_bps"] == 1.0
    assert set(report["tables"]) == set(TABLES)

    rows = list(csv.reader(io.StringIO(csv_bytes.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r[0]) for r in rows[1:]] == [t["id"] for t in report["trades"]]

    # Piped: the tables are whole (nothing cut to 80 columns), every per-pair and monthly row printed.
    assert "…" not in stdout and max(map(len, stdout.splitlines())) > 100
    for row in report["tables"]["per_pair"] + report["tables"]["per_month"]:
        key = row.get("symbol") or row["month"]
        assert any(line.split("│")[1].strip() == key and f"{row['net_pnl']:,.4f}" in line
                   for line in stdout.splitlines() if line.count("│") > 2), key
    for reason in report["tables"]["per_exit_reason"]:
        assert reason["reason"] in stdout


def test_overrides_and_an_open_ended_timerange(cli, tmp_path):
    config = write_config(tmp_path, {**DOCUMENT, "symbols": ["ETHBTC"]})
    by_range, by_dates = tmp_path / "range.json", tmp_path / "dates.json"
    common = ("--config", config, "--data", ETH, "--fee", "0.001", "--starting-balance", "2500", "--leverage", "7")
    assert cli(*common, "--timerange", "20180115-", "--json", str(by_range)).exit_code == 0
    assert cli(*common, "--from", "2018-01-15", "--json", str(by_dates)).exit_code == 0
    assert by_range.read_bytes() == by_dates.read_bytes()
    report = json.loads(by_range.read_bytes())
    engine = report["parameters"]["settings"]["engine"]
    assert (engine["taker_fee"], engine["maker_fee"], engine["starting_balance"], engine["leverage"]) == (
        0.001, 0.001, 2500.0, 7)
    assert report["metrics"]["starting_balance"] == 2500.0 and report["parameters"]["trade_from"] == ms("2018-01-15")
    assert report["data"]["traded_from"] == ms("2018-01-15") + 300_000 and report["parameters"]["trade_to"] is None
    until = tmp_path / "until.json"
    assert cli(*common, "--timerange", "-20180115", "--json", str(until)).exit_code == 0
    assert json.loads(until.read_bytes())["data"]["traded_to"] == ms("2018-01-15")


def test_a_simple_generator_on_one_file_without_config(cli, tmp_path):
    out = tmp_path / "sma.json"
    result = cli("--data", BTC, "--symbol", "BTCUSDT", "--warmup-from", "2023-01-03", "--timerange",
                 "20230105-20230201", "--strategy", "sma_cross", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "total return" in result.stdout and "BTCUSDT" in result.stdout
    report = json.loads(out.read_bytes())
    candles = [c for c in dataset("BTCUSDT-5m-2023-01.csv.gz") if c.open_time >= ms("2023-01-03")]
    assert report["parameters"]["signals"] == "sma_cross" and report["parameters"]["warmup_candles"] is None
    direct = backtest_symbols({"BTCUSDT": candles}, {"BTCUSDT": sma_cross(candles)},
                              parse({**DOCUMENT, "symbols": ["BTCUSDT"], "engine": {}}).engine,
                              trade_from=ms("2023-01-05"), trade_to=ms("2023-02-01"))
    assert report["trades"] == [t.to_dict() for t in direct.trades] and len(direct.trades) > 10


def bad_files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "BTCUSDT-5m-notgzip.csv.gz").write_bytes(b"not gzip at all")
    (tmp_path / "BTCUSDT-5m-badrow.csv").write_text("open_time,open,high,low,close,volume\n"
                                                    "1672531200000,10,12,9,11,5\n1672531500000,10,8,9,11,5\n")
    (tmp_path / "BTCUSDT-5m-empty.csv").write_text("")
    (tmp_path / "BTCUSDT-5m-header.csv").write_text("time,price\n1,2\n")
    (tmp_path / "data.csv.gz").write_bytes(b"")
    return {
        "bad_json": write_config(tmp_path, {}, "bad.json").replace("bad.json", "garbage.json"),
        "leverage": write_config(tmp_path, {**DOCUMENT, "engine": {"leverage": 500}}, "lev.json"),
        "class": write_config(tmp_path, {**DOCUMENT, "analysis": {"rsi": {"length": 1}}}, "rsi.json"),
        "format": write_config(tmp_path, {**DOCUMENT, "format": "freqtrade"}, "fmt.json"),
        "pairs": write_config(tmp_path, DOCUMENT, "pairs.json"),
    }


BAD = [
    (("--data", BTC, "--symbol", "ETHBTC"), "holds BTCUSDT (its file name says so), which contradicts --symbol"),
    (("--data", "{tmp}/BTCUSDT-5m-none.csv.gz"), "no such file"),
    (("--data", "{tmp}/BTCUSDT-5m-notgzip.csv.gz"), "cannot read it"),
    (("--data", "{tmp}/BTCUSDT-5m-badrow.csv"), "bad candle at row 2"),
    (("--data", "{tmp}/BTCUSDT-5m-empty.csv"), "empty file"),
    (("--data", "{tmp}/BTCUSDT-5m-header.csv"), "header must hold open_time"),
    (("--data", "{tmp}/data.csv.gz"), "cannot tell symbol and interval from file name"),
    (("--data", BTC, "--data", BTC), "two files for BTCUSDT"),
    (("--data", BTC, "--data", str(CANDLES / "ALTBTC-1m-2017-11.csv.gz")), "different intervals"),
    (("--data", BTC, "--interval", "1h"), "--interval 1h contradicts the data files, which hold 5m"),
    (("--data", BTC, "--timerange", "2023-01-05"), "--timerange '2023-01-05': use YYYYMMDD-YYYYMMDD"),
    (("--data", BTC, "--timerange", "20230230-"), "20230230 is not a calendar date"),
    (("--data", BTC, "--timerange", "20230110-20230105"), "the start must be before the end"),
    (("--data", BTC, "--timerange", "-"), "use YYYYMMDD-YYYYMMDD"),
    (("--data", BTC, "--timerange", "20300101-"), "no candle opens in the time range"),
    (("--data", BTC, "--timerange", "20230105-", "--from", "2023-01-06"), "give it or --from/--to, not both"),
    (("--data", BTC, "--from", "yesterday"), "--from 'yesterday': not an ISO date"),
    (("--data", BTC, "--warmup-from", "2030-01-01"), "--warmup-from: BTCUSDT-5m-2023-01.csv.gz has no candle"),
    (("--data", BTC, "--leverage", "0"), "--leverage: Leverage must be a whole number from 1 to 125x, got 0"),
    (("--data", BTC, "--leverage", "ten"), "--leverage 'ten': not a whole number"),
    (("--data", BTC, "--fee", "0.5"), "--fee: Taker fee must be a number at least -0.01 and below 0.1, got 0.5"),
    (("--data", BTC, "--fee", "inf"), "--fee 'inf': not a finite number"),
    (("--data", BTC, "--starting-balance", "-1"), "--starting-balance: Starting balance must be a number above 0"),
    (("--data", BTC, "--strategy", "astrology"), "--strategy: unknown strategy astrology"),
    (("--data", BTC, "--strategy", "sma_cross", "--strategy", "rsi"), "sma_cross runs alone"),
    (("--config", "{tmp}/nope.json"), "--config {tmp}/nope.json: cannot read it"),
    (("--config", "{bad_json}"), "not valid JSON"),
    (("--config", "{leverage}"), "engine.leverage: Leverage must be a whole number from 1 to 125x, got 500"),
    (("--config", "{class}"), "analysis.rsi.length: RSI length must be a whole number from 2 to 100 candles, got 1"),
    (("--config", "{format}"), "format: must be 'durabot-settings'"),
    (("--config", "{pairs}", "--data", BTC), "contradicts the settings document's symbols (ETHBTC, LTCBTC)"),
    ((), "nothing to backtest"),
    (("--data", BTC, "--json", "{tmp}/no/such/dir/out.json"), "--json {tmp}/no/such/dir/out.json: cannot write it"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[f"{i}" for i in range(len(BAD))])
def test_every_bad_input_is_one_line_and_exit_code_2(cli, tmp_path, args, message):
    paths = {"tmp": str(tmp_path), **bad_files(tmp_path)}
    (tmp_path / "garbage.json").write_text("{not json")
    result = cli(*(a.format(**paths) for a in args))
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message.format(**paths) in lines[0], lines[0]
    assert "Traceback" not in result.output
