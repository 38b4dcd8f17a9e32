"""``durabot backtest``: run the backtester on a data file and print a readable report.

Indicators warm up from ``--warmup-from`` (the anchor; default the file's first candle) and trading
starts at ``--from``. Strategies: the five of ``trading.analysis`` (rsi, macd, bollinger, volume,
stochastic; combined by consensus) or one of the simple generators (sma_cross, rsi_threshold).
The same input gives byte-identical ``--json`` output.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.datafiles import load_candles
from trading.backtest import BacktestResult, run_backtest
from trading.candle import Candle
from trading.settings import EngineSettings
from trading.simple_signals import rsi_threshold, sma_cross

FIVE = ("rsi", "macd", "bollinger", "volume", "stochastic")
SIMPLE = ("sma_cross", "rsi_threshold")


def parse_time(text: str | None, option: str) -> int | None:
    """ISO date or datetime (UTC when no zone is given) → epoch milliseconds."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO date/time", param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def signals_for(candles: list[Candle], strategies: list[str]) -> Any:
    unknown = [s for s in strategies if s not in FIVE + SIMPLE]
    if unknown:
        raise typer.BadParameter(
            f"unknown strategy {', '.join(unknown)}; known: {', '.join(FIVE + SIMPLE)}",
            param_hint="--strategy",
        )
    simple = [s for s in strategies if s in SIMPLE]
    if simple:
        if len(strategies) > 1:
            raise typer.BadParameter(f"{simple[0]} runs alone, not with other strategies", param_hint="--strategy")
        return sma_cross(candles) if simple[0] == "sma_cross" else rsi_threshold(candles)
    from trading.analysis import AnalysisSettings, compute_signal_series

    enabled = tuple(strategies) if strategies else FIVE
    settings = AnalysisSettings(enabled=enabled, min_agree=min(3, len(enabled)))
    return compute_signal_series(candles, settings)


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _pct(value: float | int | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _num(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,.4f}"


def report(console: Console, result: BacktestResult, data: Path, strategies: list[str]) -> None:
    m = result.metrics
    console.print(
        f"[bold]Backtest[/bold] {result.symbol} from {data.name}: "
        f"{_time(result.close_times[0])} → {_time(result.close_times[-1])} UTC, "
        f"{len(result.close_times):,} candles, strategy {'+'.join(strategies) or '+'.join(FIVE)}"
    )
    table = Table(show_header=False)
    rows = [
        ("starting balance", _num(m["starting_balance"])),
        ("final equity", _num(m["final_equity"])),
        ("total return", _pct(m["total_return"])),
        ("trades", str(m["trades"])),
        ("win rate", _pct(m["win_rate"])),
        ("profit factor", _num(m["profit_factor"])),
        ("Sharpe (daily, ×√365)", _num(m["sharpe"])),
        ("Sortino (daily, ×√365)", _num(m["sortino"])),
        ("max drawdown", _pct(m["max_drawdown"])),
        ("exposure", _pct(m["exposure"])),
        ("average trade", _num(m["average_trade"])),
        ("fees paid", _num(m["fees_paid"])),
        ("funding paid", _num(m["funding_paid"])),
        ("entries rejected", str(result.entries_rejected)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if result.trades:
        trades = Table(title="last trades")
        for column in (
            "id",
            "side",
            "entry",
            "exit",
            "qty",
            "entry price",
            "exit price",
            "net PnL",
            "reason",
        ):
            trades.add_column(column)
        for t in result.trades[-10:]:
            trades.add_row(
                str(t.id),
                t.side,
                _time(t.entry_time),
                _time(t.exit_time),
                f"{t.quantity:g}",
                f"{t.entry_price:g}",
                f"{t.exit_price:g}",
                f"{t.net_pnl:,.2f}",
                t.close_reason,
            )
        console.print(trades)


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    def backtest(
        data: Annotated[Path, typer.Option("--data", help="candle file (gzip CSV) from data/candles")],
        symbol: Annotated[str, typer.Option("--symbol", help="symbol traded, e.g. BTCUSDT")],
        warmup_from: Annotated[str | None, typer.Option("--warmup-from", help="anchor: indicators start here")] = None,
        trade_from: Annotated[str | None, typer.Option("--from", help="first candle traded (ISO, UTC)")] = None,
        trade_to: Annotated[str | None, typer.Option("--to", help="trade candles opening before this")] = None,
        strategy: Annotated[
            list[str] | None,
            typer.Option("--strategy", help=f"one of {', '.join(FIVE + SIMPLE)}; repeatable"),
        ] = None,
        json_out: Annotated[Path | None, typer.Option("--json", help="write the full result as JSON")] = None,
    ) -> None:
        """Backtest a strategy on a candle file and print a report."""
        if not data.exists():
            raise typer.BadParameter(f"{data} does not exist", param_hint="--data")
        candles = load_candles(data, symbol=symbol)
        anchor = parse_time(warmup_from, "--warmup-from")
        if anchor is not None:
            candles = candles[bisect.bisect_left([c.open_time for c in candles], anchor) :]
            if not candles:
                raise typer.BadParameter("no candle after the anchor", param_hint="--warmup-from")
        strategies = list(strategy or [])
        signals = signals_for(candles, strategies)
        try:
            result = run_backtest(
                candles,
                signals,
                EngineSettings(),
                trade_from=parse_time(trade_from, "--from"),
                trade_to=parse_time(trade_to, "--to"),
                candles_validated=True,  # load_candles validated every row
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        report(Console(), result, data, strategies)
        if json_out is not None:
            json_out.write_text(result.to_json() + "\n", encoding="utf-8")
            typer.echo(f"wrote {json_out}")
