"""``durabot backtest``: backtest candle files and print the report a web backtest stores.

Settings: the defaults, or a settings document (``--config``, what a paper session exports), then
``--fee``, ``--starting-balance`` and ``--leverage`` on top. Symbols: ``--symbol`` if given, else the
document's, else the ``--data`` files'; each traded symbol's candles come from its ``--data`` file or,
without one, from the single ``SYMBOL-INTERVAL-*`` file under ``DURABOT_DATA_DIR/candles``. One symbol
runs ``trading.backtest`` (the fast path), several one Engine over candles merged by time
(``trading.backtest_multi``), as a paper session and the web backtests do.

Time: ``--timerange 20230105-20230120`` (freqtrade style: UTC days, start included, end excluded,
either end may be left open) or ``--from``/``--to`` (ISO); indicators warm up from ``--warmup-from``
(the anchor; default each file's first candle). ``--json`` writes the report (``trading.backtest_report``)
as canonical JSON, the same bytes as the web export for the same settings and candles; ``--csv``
writes its trades. Bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.datafiles import load_candles, parse_data_filename
from core.settings_document import SettingsDocument, SettingsDocumentError, loads, parse
from trading.analysis_settings import STRATEGY_NAMES, AnalysisSettings
from trading.backtest_multi import backtest_symbols
from trading.backtest_report import report_for, report_json, report_parameters, trades_csv
from trading.candle import Candle
from trading.settings import EngineSettings
from trading.simple_signals import rsi_threshold, sma_cross

FIVE = STRATEGY_NAMES
SIMPLE = ("sma_cross", "rsi_threshold")
# Options that override a setting of the document: option → engine settings it sets.
OVERRIDES = {"--fee": ("taker_fee", "maker_fee"), "--starting-balance": ("starting_balance",),
             "--leverage": ("leverage",)}
_DAY = re.compile(r"^\d{8}$")


class BadInput(Exception):
    """Input the command refuses: printed as one line, exit code 2."""


@dataclass(frozen=True)
class Plan:
    """What to run, resolved from the options before any candle is read."""

    document: SettingsDocument
    files: dict[str, Path]  # symbol → candle file
    warmup_from: int | None
    trade_from: int | None
    trade_to: int | None
    strategies: tuple[str, ...]


# -- parsing the options ----------------------------------------------------------------------------
def parse_time(text: str | None, option: str) -> int | None:
    """ISO date or datetime (UTC when no zone is given) → epoch milliseconds."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option} {text!r}: not an ISO date/time such as 2023-01-05 or 2023-01-05T12:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_timerange(text: str) -> tuple[int | None, int | None]:
    """``YYYYMMDD-YYYYMMDD``, ``YYYYMMDD-`` or ``-YYYYMMDD`` → (start, end) in ms, UTC midnights."""
    start_text, dash, end_text = text.partition("-")
    if text.count("-") != 1 or not (start_text or end_text):
        raise BadInput(f"--timerange {text!r}: use YYYYMMDD-YYYYMMDD (either end may be left out, e.g. 20230105-)")
    ends: list[int | None] = []
    for part in (start_text, end_text):
        if not part:
            ends.append(None)
            continue
        if not _DAY.match(part):
            raise BadInput(f"--timerange {text!r}: {part!r} is not a date YYYYMMDD")
        try:
            day = datetime.strptime(part, "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            raise BadInput(f"--timerange {text!r}: {part} is not a calendar date") from None
        ends.append(int(day.timestamp() * 1000))
    start, end = ends
    if start is not None and end is not None and start >= end:
        raise BadInput(f"--timerange {text!r}: the start must be before the end")
    return start, end


def read_document(path: Path) -> SettingsDocument:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return loads(text)
    except SettingsDocumentError as exc:
        raise BadInput(f"--config {path}: {exc}") from None


def with_overrides(document: SettingsDocument, values: Mapping[str, Any], interval: str | None,
                   symbols: Sequence[str], strategies: Sequence[str]) -> SettingsDocument:
    """The document with the command line's settings on top, validated as a document is."""
    data = document.to_dict()
    for option, value in values.items():
        if value is not None:
            for name in OVERRIDES[option]:
                data["engine"][name] = value
    if interval is not None:
        data["interval"] = interval
    data["symbols"] = list(symbols)
    consensus = [s for s in strategies if s in FIVE]
    if consensus:
        data["analysis"]["enabled"] = consensus
        data["analysis"]["min_agree"] = min(data["analysis"]["min_agree"], len(consensus))
    try:
        return parse(data)
    except SettingsDocumentError as exc:
        overridden = next((o for o, names in OVERRIDES.items() if exc.field in {f"engine.{n}" for n in names}), None)
        where = overridden or {"interval": "--interval", "symbols": "--symbol",
                               "analysis.enabled": "--strategy"}.get(exc.field or "", "settings")
        raise BadInput(f"{where}: {exc.reason}") from None


def number(text: str | None, option: str, kind: type[int] | type[float]) -> int | float | None:
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise BadInput(f"{option} {text!r}: not {'a whole number' if kind is int else 'a number'}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadInput(f"{option} {text!r}: not a finite number")
    return value


def check_strategies(strategies: Sequence[str]) -> tuple[str, ...]:
    unknown = [s for s in strategies if s not in FIVE + SIMPLE]
    if unknown:
        raise BadInput(f"--strategy: unknown strategy {', '.join(unknown)}; known: {', '.join(FIVE + SIMPLE)}")
    simple = [s for s in strategies if s in SIMPLE]
    if simple and len(strategies) > 1:
        raise BadInput(f"--strategy: {simple[0]} runs alone, not with other strategies")
    return tuple(strategies)


def file_symbol(path: Path) -> tuple[str, str]:
    try:
        return parse_data_filename(path)
    except ValueError as exc:
        raise BadInput(f"--data {path}: {exc}") from None


def find_file(candles_dir: Path, symbol: str, interval: str) -> Path:
    found = sorted(p for p in candles_dir.glob(f"{symbol}-{interval}-*.csv*") if p.is_file())
    if not found:
        raise BadInput(f"no --data for {symbol} and no {symbol}-{interval}-*.csv.gz under {candles_dir}")
    if len(found) > 1:
        raise BadInput(f"several candle files for {symbol} {interval} under {candles_dir} "
                       f"({', '.join(p.name for p in found)}): choose one with --data")
    return found[0]


def plan(*, config: Path | None, data: Sequence[Path], symbols: Sequence[str], interval: str | None,
         timerange: str | None, warmup_from: str | None, trade_from: str | None, trade_to: str | None,
         strategies: Sequence[str], overrides: Mapping[str, Any], candles_dir: Callable[[], Path]) -> Plan:
    """Resolve the options into a plan; every contradiction is a ``BadInput`` naming the option."""
    chosen = check_strategies(strategies)
    document = read_document(config) if config is not None else None
    by_file: dict[str, Path] = {}
    file_intervals: dict[str, str] = {}
    for path in data:
        symbol, file_interval = file_symbol(path)
        if symbol in by_file:
            raise BadInput(f"--data: two files for {symbol} ({by_file[symbol].name}, {path.name})")
        by_file[symbol], file_intervals[symbol] = path, file_interval
    if symbols and len(set(symbols)) != len(symbols):
        raise BadInput(f"--symbol: a symbol is given twice ({', '.join(symbols)})")
    traded = list(symbols) or (list(document.symbols) if document else list(by_file))
    if not traded:
        raise BadInput("nothing to backtest: give --data FILE (or --config with the symbols to trade)")
    for symbol, path in by_file.items():
        if symbol not in traded:
            source = "--symbol" if symbols else "the settings document's symbols"
            raise BadInput(f"--data {path.name} holds {symbol} (its file name says so), which contradicts "
                           f"{source} ({', '.join(traded)})")
    intervals = sorted(set(file_intervals.values()))
    if len(intervals) > 1:
        raise BadInput(f"--data: the files hold different intervals ({', '.join(intervals)}); one per backtest")
    wanted = interval or (intervals[0] if intervals else None) or (document.interval if document else None)
    if wanted is None:
        raise BadInput("--interval: no interval given and none in a settings document")
    if intervals and intervals[0] != wanted:
        option = "--interval" if interval else "the settings document's interval"
        raise BadInput(f"{option} {wanted} contradicts the data files, which hold {intervals[0]} candles")
    files = {s: by_file.get(s) or find_file(candles_dir(), s, wanted) for s in traded}
    base = document or SettingsDocument(tuple(traded), wanted, EngineSettings(), AnalysisSettings())
    effective = with_overrides(base, overrides, wanted, traded, chosen)
    if timerange is not None and (trade_from is not None or trade_to is not None):
        raise BadInput("--timerange: give it or --from/--to, not both")
    start, end = parse_timerange(timerange) if timerange is not None else (
        parse_time(trade_from, "--from"), parse_time(trade_to, "--to"))
    if start is not None and end is not None and start >= end:
        raise BadInput("--from: must be before --to")
    return Plan(effective, files, parse_time(warmup_from, "--warmup-from"), start, end, chosen)


# -- running ----------------------------------------------------------------------------------------
def load(plan_: Plan) -> dict[str, list[Candle]]:
    candles: dict[str, list[Candle]] = {}
    for symbol, path in plan_.files.items():
        try:
            series = load_candles(path)
        except FileNotFoundError:
            raise BadInput(f"--data {path}: no such file") from None
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            raise BadInput(f"--data {path}: cannot read it ({exc})") from None
        except ValueError as exc:  # BadCandleError included: names the row
            raise BadInput(f"--data {path}: {exc}") from None
        if plan_.warmup_from is not None:
            series = series[bisect.bisect_left([c.open_time for c in series], plan_.warmup_from):]
            if not series:
                raise BadInput(f"--warmup-from: {path.name} has no candle at or after it")
        candles[symbol] = series
    return candles


def signals_for(candles: list[Candle], strategies: Sequence[str], analysis: AnalysisSettings) -> Any:
    if strategies and strategies[0] in SIMPLE:
        return sma_cross(candles) if strategies[0] == "sma_cross" else rsi_threshold(candles)
    from trading.analysis import compute_signal_series

    return compute_signal_series(candles, analysis)


def run(plan_: Plan) -> dict[str, Any]:
    """The report of the plan's backtest."""
    candles = load(plan_)
    document = plan_.document
    in_window = [c for series in candles.values() for c in series
                 if (plan_.trade_from is None or c.open_time >= plan_.trade_from)
                 and (plan_.trade_to is None or c.open_time < plan_.trade_to)]
    if not in_window:
        spans = ", ".join(f"{s} {_time(series[0].open_time)} to {_time(series[-1].open_time)}"
                          for s, series in candles.items())
        raise BadInput(f"no candle opens in the time range asked for (UTC; the data: {spans})")
    signals = {s: signals_for(series, plan_.strategies, document.analysis) for s, series in candles.items()}
    try:
        result = backtest_symbols(candles, signals, document.engine, trade_from=plan_.trade_from,
                                  trade_to=plan_.trade_to, candles_validated=True)
    except ValueError as exc:
        raise BadInput(f"backtest: {exc}") from None
    simple = plan_.strategies[0] if plan_.strategies and plan_.strategies[0] in SIMPLE else None
    parameters = report_parameters(document.to_dict(), document.analysis, signals=simple or "consensus",
                                   warmup_from=plan_.warmup_from, trade_from=plan_.trade_from,
                                   trade_to=plan_.trade_to)
    return report_for(result, candles, document.interval, parameters)


# -- printing ---------------------------------------------------------------------------------------
def _time(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _pct(value: float | int | None, scale: float = 100.0) -> str:
    return "-" if value is None else f"{value * scale:.2f}%"


def _num(value: float | int | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def duration_text(ms: int | None) -> str:
    if ms is None:
        return "-"
    minutes = ms // 60_000
    days, rest = divmod(minutes, 1440)
    return f"{days}d {rest // 60:02d}:{rest % 60:02d}" if days else f"{rest // 60:02d}:{rest % 60:02d}"


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    return table


SUMMARY_COLUMNS = ("trades", "wins", "draws", "losses", "win rate", "net PnL", "net PnL %", "avg return %",
                   "profit factor", "fees", "avg duration")


def _summary_row(row: Mapping[str, Any]) -> list[str]:
    return [str(row["trades"]), str(row["wins"]), str(row["draws"]), str(row["losses"]), _pct(row["win_rate"]),
            _num(row["net_pnl"]), _pct(row["net_pnl_pct"], 1.0), _pct(row["avg_return_pct"], 1.0),
            _num(row["profit_factor"], 2), _num(row["fees"]), duration_text(row["avg_duration_ms"])]


def print_report(console: Console, report: Mapping[str, Any], files: Mapping[str, Path]) -> None:
    data, m, tables = report["data"], report["metrics"], report["tables"]
    settings, signals = report["parameters"]["settings"], report["parameters"]["signals"]
    console.print(
        f"[bold]Backtest[/bold] {', '.join(data['symbols'])} {data['interval']} "
        f"({', '.join(p.name for p in files.values())}): {_time(data['traded_from'])} → {_time(data['traded_to'])} "
        f"UTC (close times), {sum(data['candles_traded'].values()):,} candles, signals {signals}"
    )
    engine = settings["engine"]
    console.print(f"market {engine['market']}, leverage {engine['leverage']}, fees taker {engine['taker_fee']} / "
                  f"maker {engine['maker_fee']}, starting balance {_num(engine['starting_balance'], 2)}")
    metrics = _table("summary", ("metric", "value"))
    for name, value in (
        ("starting balance", _num(m["starting_balance"])), ("final equity", _num(m["final_equity"])),
        ("total return", _pct(m["total_return"])), ("trades", str(m["trades"])), ("win rate", _pct(m["win_rate"])),
        ("profit factor", _num(m["profit_factor"])), ("Sharpe (daily, ×√365)", _num(m["sharpe"])),
        ("Sortino (daily, ×√365)", _num(m["sortino"])), ("max drawdown", _pct(m["max_drawdown"])),
        ("exposure", _pct(m["exposure"])), ("average trade", _num(m["average_trade"])),
        ("fees paid", _num(m["fees_paid"])), ("funding paid", _num(m["funding_paid"])),
        ("entries rejected", str(m["entries_rejected"])),
        ("open at the end", f"{m['open_positions_at_end']} (unrealised {_num(m['unrealised_pnl_at_end'])})"),
    ):
        metrics.add_row(name, value)
    console.print(metrics)
    for key, title, first in (("per_pair", "per pair", "symbol"), ("per_exit_reason", "per exit reason", "reason"),
                              ("per_month", "per month (exit time, UTC)", "month")):
        table = _table(title, (first, *SUMMARY_COLUMNS))
        for row in tables[key]:
            table.add_row(str(row[first]), *_summary_row(row))
        console.print(table)
    spans = _table("trade duration", ("of", "trades", "average", "shortest", "longest"))
    for name in ("all", "winners", "draws", "losers"):
        d = tables["durations"][name]
        spans.add_row(name, str(d["trades"]), duration_text(d["avg_ms"]), duration_text(d["min_ms"]),
                      duration_text(d["max_ms"]))
    console.print(spans)
    trades = report["trades"]
    if trades:
        columns = ("id", "symbol", "side", "entry", "exit", "qty", "entry price", "exit price", "net PnL", "reason")
        last = _table(f"last {min(10, len(trades))} of {len(trades)} trades (all: --csv or --json)", columns)
        for t in trades[-10:]:
            last.add_row(str(t["id"]), t["symbol"], str(t["side"]), _time(t["entry_time"]), _time(t["exit_time"]),
                         f"{t['quantity']:g}", f"{t['entry_price']:g}", f"{t['exit_price']:g}", f"{t['net_pnl']:,.2f}",
                         str(t["close_reason"]))
        console.print(last)


def console_for_stdout() -> Console:
    """A terminal gets rich's layout at its width; a pipe or file gets every table at full width, never
    cut to 80 columns, and no colour codes."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, no_color=True, highlight=False, soft_wrap=True)


def data_dir() -> Path:
    from pydantic import ValidationError

    from core.settings import Settings

    try:
        return Settings().data_dir
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        raise BadInput(f"setting DURABOT_{name.upper()}: {first['msg']}") from None


def _write(path: Path, text: str, option: str) -> None:
    try:
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise BadInput(f"{option} {path}: cannot write it ({exc.strerror or exc})") from None


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest(
        data: Annotated[list[Path] | None, typer.Option(
            "--data", help="candle file (gzip CSV named SYMBOL-INTERVAL-…); repeat for several symbols")] = None,
        config: Annotated[Path | None, typer.Option(
            "--config", help="settings document (JSON) a paper session exported")] = None,
        symbol: Annotated[list[str] | None, typer.Option(
            "--symbol", help="symbol to trade; repeatable (default: the document's, else the files')")] = None,
        interval: Annotated[str | None, typer.Option("--interval", help="candle interval, e.g. 5m")] = None,
        timerange: Annotated[str | None, typer.Option(
            "--timerange", help="YYYYMMDD-YYYYMMDD (UTC; start included, end excluded; an end may be open)")] = None,
        warmup_from: Annotated[str | None, typer.Option("--warmup-from", help="anchor: indicators start here")] = None,
        trade_from: Annotated[str | None, typer.Option("--from", help="first candle traded (ISO, UTC)")] = None,
        trade_to: Annotated[str | None, typer.Option("--to", help="trade candles opening before this")] = None,
        strategy: Annotated[list[str] | None, typer.Option(
            "--strategy", help=f"one of {', '.join(FIVE + SIMPLE)}; repeatable")] = None,
        # Numbers are read here rather than by click, so a bad one is a one-line error like every other.
        fee: Annotated[str | None, typer.Option("--fee", help="fee per fill, a fraction (0.001 = 0.1 %)")] = None,
        starting_balance: Annotated[str | None, typer.Option("--starting-balance", help="quote currency")] = None,
        leverage: Annotated[str | None, typer.Option("--leverage", help="1-125 (futures)")] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="write the report as JSON")] = None,
        csv_out: Annotated[Path | None, typer.Option("--csv", help="write every trade as CSV")] = None,
    ) -> None:
        """Backtest candle files with a settings document and print the report."""
        try:
            resolved = plan(config=config, data=data or [], symbols=symbol or [], interval=interval,
                            timerange=timerange, warmup_from=warmup_from, trade_from=trade_from, trade_to=trade_to,
                            strategies=strategy or [], candles_dir=lambda: data_dir() / "candles",
                            overrides={"--fee": number(fee, "--fee", float),
                                       "--starting-balance": number(starting_balance, "--starting-balance", float),
                                       "--leverage": number(leverage, "--leverage", int)})
            report = run(resolved)
            print_report(console_for_stdout(), report, resolved.files)
            if json_out is not None:
                _write(json_out, report_json(report) + "\n", "--json")
                typer.echo(f"wrote {json_out}")
            if csv_out is not None:
                _write(csv_out, trades_csv(report["trades"]), "--csv")
                typer.echo(f"wrote {csv_out}")
        except BadInput as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

