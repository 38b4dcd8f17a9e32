import { describe, expect, it } from 'vitest';
import { snapToBar, toLine } from './chartData';
import { csvCell, toCsv } from './csv';
import { formatDuration } from '../components/TradeReview';
import { formatIndicators, formatPct, formatPnl, formatPrice, formatTime, tone } from './format';
import { equityCurve, maxDrawdown, pnlOnDay, unrealised, winRate } from './metrics';
import { describe as describeProblem, problemFrom, problemFromCheck } from './validation';
import { CLOSED_COLUMNS, filterClosed } from '../pages/Positions';
import { curvePoints, parseUtc } from '../pages/Backtests';

describe('formatting', () => {
  it('signs PnL and never shows a negative zero', () => {
    expect(formatPnl(12.3)).toBe('+12.30');
    expect(formatPnl(-4)).toBe('−4.00');
    expect(formatPnl(-0.001)).toBe('0.00');
    expect(formatPnl(1234.5)).toBe('+1,234.50');
    expect(formatPnl(null)).toBe('—');
    expect(formatPnl(Number.NaN)).toBe('—');
    expect([tone(1), tone(-1), tone(0), tone(undefined)]).toEqual(['up', 'down', 'flat', 'flat']);
  });
  it('shows enough digits for small prices, and percentages and market times', () => {
    expect(formatPrice(0.091234)).toBe('0.091234');
    expect(formatPrice(42000.5)).toBe('42,000.50');
    expect(formatPct(0.125)).toBe('12.5%');
    expect(formatTime(1514764800000)).toBe('2018-01-01 00:00 UTC');
    expect(formatTime(0)).toBe('—');
  });
});

describe('CSV export', () => {
  it('quotes separators and neutralises formulas', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell(-1.5)).toBe('-1.5');
    expect(csvCell(null)).toBe('');
  });
  it('writes closed trades with a header row', () => {
    const rows = [{ id: 1, symbol: 'BTCUSDT', side: 'long', quantity: 2, entry_time: 0, entry_price: 10, exit_time: 60000,
      exit_price: 11, entry_fee: 0.1, exit_fee: 0.2, net_pnl: 1.7, close_reason: 'take_profit' }];
    const text = toCsv(rows, CLOSED_COLUMNS);
    const [header, line, end] = text.split('\r\n');
    expect(header).toBe('id,symbol,side,quantity,entry_time,entry_price,exit_time,exit_price,fees,net_pnl,close_reason');
    expect(line).toBe('1,BTCUSDT,long,2,1970-01-01T00:00:00.000Z,10,1970-01-01T00:01:00.000Z,11,0.30000000000000004,1.7,take_profit');
    expect(end).toBe('');
  });
  it('filters closed trades by symbol, side and result', () => {
    const rows = [{ id: 1, symbol: 'A', side: 'long', net_pnl: 1 }, { id: 2, symbol: 'A', side: 'short', net_pnl: -1 },
      { id: 3, symbol: 'B', side: 'long', net_pnl: 0 }];
    expect(filterClosed(rows, { symbol: 'A', side: '', result: '' }).map((r) => r.id)).toEqual([1, 2]);
    expect(filterClosed(rows, { symbol: '', side: 'long', result: 'loss' }).map((r) => r.id)).toEqual([3]);
    expect(filterClosed(rows, { symbol: '', side: '', result: 'win' }).map((r) => r.id)).toEqual([1]);
  });
});

describe('validation messages', () => {
  it('maps a rejection to its field and reason', () => {
    const p = problemFrom(422, { detail: { field: 'leverage', reason: 'must be between 1 and 125' } });
    expect(p).toEqual({ status: 422, field: 'leverage', message: 'must be between 1 and 125' });
    expect(describeProblem(p)).toBe('leverage: must be between 1 and 125');
  });
  it('maps FastAPI validation lists, plain details and empty bodies', () => {
    expect(problemFrom(422, { detail: [{ loc: ['body', 'risk', 'cooldown_minutes'], msg: 'too big' }] }))
      .toEqual({ status: 422, field: 'risk.cooldown_minutes', message: 'too big' });
    expect(describeProblem(problemFrom(404, { detail: 'no open trade 9' }))).toBe('no open trade 9');
    expect(describeProblem(problemFrom(503, undefined))).toBe('The server failed (503); try again.');
    expect(describeProblem(problemFrom(422, { detail: { field: null, reason: 'session is not running' } }))).toBe('session is not running');
  });
  it('turns the settings dry run\'s verdict into the same problem a rejected save gives', () => {
    expect(problemFromCheck({ valid: true, field: null, reason: null })).toBeNull();
    const p = problemFromCheck({ valid: false, field: 'leverage', reason: 'leverage must be 1-125, got 0' });
    expect(p).toEqual({ status: 422, field: 'leverage', message: 'leverage must be 1-125, got 0' });
    expect(describeProblem(problemFromCheck({ valid: false, reason: 'nothing to change' })!)).toBe('nothing to change');
  });
});

describe('overview metrics', () => {
  const trades = [{ exit_time: 2 * 86_400_000 + 5, net_pnl: -50 }, { exit_time: 86_400_000, net_pnl: 100 }, { exit_time: 2 * 86_400_000 + 9, net_pnl: 20 }];
  it('computes win rate, curve, drawdown and the day\'s PnL', () => {
    expect(winRate(trades)).toBeCloseTo(2 / 3);
    expect(winRate([])).toBeNull();
    const curve = equityCurve(1000, trades);
    expect(curve.map((p) => p.value)).toEqual([1100, 1050, 1070]);
    expect(maxDrawdown(1000, curve)).toBeCloseTo(50 / 1100);
    expect(pnlOnDay(trades, 2 * 86_400_000 + 100)).toBe(-30);
    expect(unrealised('long', 2, 10, 12)).toBe(4);
    expect(unrealised('short', 2, 10, 12)).toBe(-4);
  });
});

describe('chart data', () => {
  it('sorts, converts to seconds and keeps one point per second', () => {
    expect(toLine([{ time: 3000, value: 3 }, { time: 1000, value: 1 }, { time: 1500, value: 2 }, { time: 4000, value: Number.NaN }]))
      .toEqual([{ time: 1, value: 2 }, { time: 3, value: 3 }]);
  });
  it('snaps a time to the bar that holds it', () => {
    const bars = [100, 400, 700];
    expect(snapToBar(bars, 450_000)).toBe(400);
    expect(snapToBar(bars, 700_000)).toBe(700);
    expect(snapToBar(bars, 50_000)).toBeNull();
  });
});

describe('backtest form and report', () => {
  it('parses the UTC end of trading', () => {
    expect(parseUtc('2018-01-02 09:00')).toBe(Date.UTC(2018, 0, 2, 9, 0));
    expect(parseUtc('2018-01-02')).toBe(Date.UTC(2018, 0, 2));
    expect(parseUtc('')).toBeNull();
    expect(parseUtc('yesterday')).toBeNull();
  });
  it('pairs the equity curve with its close times', () => {
    expect(curvePoints({ close_times: [1, 2], equity: [10, 11], points_of: 2 })).toEqual([{ time: 1, value: 10 }, { time: 2, value: 11 }]);
    expect(curvePoints(null)).toEqual([]);
  });
});

describe('indicator line', () => {
  it('reads the main indicators in order and leaves out undefined ones', () => {
    expect(formatIndicators({ rsi: 34.567, macd_histogram: -0.000123456, bb_percent_b: 0.1234, stoch_k: null, volume_ratio: 1.5, atr: 12.3456 }))
      .toBe('RSI 34.6 · MACD hist −0.000123 · %B 0.12 · Vol × 1.50 · ATR 12.3');
    expect(formatIndicators({})).toBe('');
    expect(formatIndicators(undefined)).toBe('');
  });
});

describe('holding time', () => {
  it('reads minutes, hours and days', () => {
    expect(formatDuration(45 * 60_000)).toBe('45 min');
    expect(formatDuration(125 * 60_000)).toBe('2 h 5 min');
    expect(formatDuration(120 * 60_000)).toBe('2 h');
    expect(formatDuration((3 * 1440 + 250) * 60_000)).toBe('3 d 4 h');
    expect(formatDuration(-1)).toBe('—');
  });
});
