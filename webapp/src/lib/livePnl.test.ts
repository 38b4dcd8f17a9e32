import { describe, expect, it } from 'vitest';
import { livePnl, withQuote } from './metrics';
import { mergeDecisions, withOlder } from '../pages/Signals';

describe('live unrealised PnL', () => {
  it('is qty × (price − entry) long and qty × (entry − price) short, as a share of the margin', () => {
    expect(livePnl({ side: 'long', quantity: 2, entry_price: 100, margin: 20 }, 103)).toEqual({ pnl: 6, pct: 0.3 });
    expect(livePnl({ side: 'short', quantity: 2, entry_price: 100, margin: 20 }, 103)).toEqual({ pnl: -6, pct: -0.3 });
    expect(livePnl({ side: 'short', quantity: 0.5, entry_price: 0.1, margin: 0.005 }, 0.09)!.pnl).toBeCloseTo(0.005, 12);
  });
  it('has no percentage without a margin, and nothing for a non-finite input', () => {
    expect(livePnl({ side: 'long', quantity: 1, entry_price: 10 }, 11)).toEqual({ pnl: 1, pct: null });
    expect(livePnl({ side: 'long', quantity: 1, entry_price: 10, margin: 0 }, 11)).toEqual({ pnl: 1, pct: null });
    expect(livePnl({ side: 'long', quantity: Number.NaN, entry_price: 10 }, 11)).toBeNull();
  });
  it('keeps the newest quote per symbol, whatever order they arrive in', () => {
    let q = withQuote({}, 'BTCUSDT', { price: 100, time: 2 });
    q = withQuote(q, 'BTCUSDT', { price: 90, time: 1 });
    expect(q.BTCUSDT).toEqual({ price: 100, time: 2 });
    q = withQuote(q, 'BTCUSDT', { price: 110, time: 3 });
    q = withQuote(q, 'ETHBTC', { price: 0.05, time: 1 });
    expect(q).toEqual({ BTCUSDT: { price: 110, time: 3 }, ETHBTC: { price: 0.05, time: 1 } });
  });
});

describe('decisions feed', () => {
  const d = (key: string, open_time: number, rejection: string | null = null) => ({
    symbol: 'ETHBTC', interval: '5m', open_time, direction: 'long', analysis_key: key, opened: false, rejection, risk: [],
  });
  it('shows each analysis once, live ones replacing stored ones, newest first', () => {
    const merged = mergeDecisions([d('b', 2, 'live')], [d('a', 1), d('b', 2, 'stored')]);
    expect(merged.map((m) => [m.analysis_key, m.rejection])).toEqual([['b', 'live'], ['a', null]]);
    expect(mergeDecisions([], [d('a', 1), d('b', 2), d('c', 3)], 2).map((m) => m.analysis_key)).toEqual(['c', 'b']);
  });
});

describe('signals feed paging', () => {
  const a = (key: string) => ({ analysis_key: key }) as unknown as Parameters<typeof withOlder>[0][number];
  it('keeps the newest page first and each older analysis once', () => {
    // A live reload moved "c" into the newest page: the older pages must not show it again.
    const merged = withOlder([a('d'), a('c')], [a('c'), a('b'), a('a')]);
    expect(merged.map((m) => m.analysis_key)).toEqual(['d', 'c', 'b', 'a']);
    expect(withOlder([], []).length).toBe(0);
  });
});
