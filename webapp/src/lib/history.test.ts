import { describe, expect, it } from 'vitest';
import { orderHistory } from './orderHistory';
import { isoWeek, periodOf, profitBy, weekStart } from './profit';

const at = (iso: string) => Date.parse(iso);

describe('profit by pair and period', () => {
  const trades = [
    { symbol: 'LTCBTC', exit_time: at('2018-01-14T23:59:59.999Z'), net_pnl: 2 },
    { symbol: 'ADABTC', exit_time: at('2018-01-15T00:04:59.999Z'), net_pnl: -1 },
    { symbol: 'LTCBTC', exit_time: at('2018-01-15T10:00:00Z'), net_pnl: -0.5 },
    { symbol: 'LTCBTC', exit_time: at('2018-02-01T00:00:00Z'), net_pnl: 4 },
  ];
  it('sums each pair, most profitable first', () => {
    expect(profitBy(trades, 'pair')).toEqual([
      { key: 'LTCBTC', label: 'LTCBTC', trades: 3, wins: 2, net_pnl: 5.5 },
      { key: 'ADABTC', label: 'ADABTC', trades: 1, wins: 0, net_pnl: -1 },
    ]);
  });
  it('splits days at 00:00 UTC, weeks on Mondays and months on the 1st, newest first', () => {
    expect(profitBy(trades, 'day').map((r) => [r.key, r.trades, r.net_pnl])).toEqual([
      ['2018-02-01', 1, 4], ['2018-01-15', 2, -1.5], ['2018-01-14', 1, 2]]);
    expect(profitBy(trades, 'week').map((r) => [r.label, r.trades])).toEqual([
      ['2018-W05 (from 2018-01-29)', 1], ['2018-W03 (from 2018-01-15)', 2], ['2018-W02 (from 2018-01-08)', 1]]);
    expect(profitBy(trades, 'month').map((r) => [r.key, r.net_pnl])).toEqual([['2018-02', 4], ['2018-01', 0.5]]);
  });
  it('numbers ISO weeks by their Thursday, across new year', () => {
    expect(isoWeek(at('2018-01-01T00:00:00Z'))).toBe('2018-W01'); // a Monday
    expect(isoWeek(at('2020-12-31T12:00:00Z'))).toBe('2020-W53');
    expect(isoWeek(at('2021-01-03T23:59:59Z'))).toBe('2020-W53'); // a Sunday
    expect(isoWeek(at('2019-12-30T00:00:00Z'))).toBe('2020-W01');
    expect(weekStart(at('2018-01-21T23:59:59Z'))).toBe(at('2018-01-15T00:00:00Z'));
    expect(periodOf(at('2018-01-31T23:59:59Z'), 'month').key).toBe('2018-01');
  });
  it('leaves out trades without a number', () => {
    expect(profitBy([{ symbol: 'X', exit_time: 1, net_pnl: Number.NaN }], 'pair')).toEqual([]);
  });
});

describe('order history', () => {
  const long = { id: 2, symbol: 'LTCBTC', side: 'long', quantity: 1, entry_time: 100, entry_price: 0.5, entry_fee: 0.1,
    exit_time: 300, exit_price: 0.6, exit_fee: 0.2, close_reason: 'take_profit' };
  const part = { ...long, quantity: 0.5, entry_fee: 0.05, exit_time: 200, exit_price: 0.55, exit_fee: 0.01, close_reason: 'manual' };
  const open = { trade_id: 3, symbol: 'ADABTC', side: 'short', quantity: 4, entry_time: 400, entry_price: 0.1, entry_fee: 0.03 };
  const resting = { id: 7, symbol: 'ADABTC', side: 'short', type: 'stop_limit', quantity: 2, filled_quantity: 0, created_time: 500,
    limit_price: 0.09, stop_price: 0.095, reduce_only: true, triggered: false };

  it('lists each fill of every trade and the resting orders, newest first', () => {
    const rows = orderHistory([open], [{ trade: long, partial_closes: [part] }], [resting]);
    expect(rows.map((r) => [r.ref, r.action, r.what, r.quantity, r.price, r.status, r.note])).toEqual([
      ['order 7', 'buy', 'stop_limit to reduce short', 2, 0.09, 'open', 'stop 0.095'],
      ['#3', 'sell', 'open short', 4, 0.1, 'filled', ''],
      ['#2', 'sell', 'close long', 1, 0.6, 'filled', 'take_profit'],
      ['#2', 'sell', 'partial close long', 0.5, 0.55, 'filled', 'manual'],
      ['#2', 'buy', 'open long', 1.5, 0.5, 'filled', ''],
    ]);
    expect(rows.find((r) => r.what === 'open long')?.fee).toBeCloseTo(0.15);
  });
  it('is empty for a new session', () => {
    expect(orderHistory([], [], [])).toEqual([]);
  });
});
