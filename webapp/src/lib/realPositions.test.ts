import { describe, expect, it } from 'vitest';
import type { RealOrder } from './realOrders';
import { differenceLines, positionSide, positionSize, protectionBody, protectionOf, triggerOf } from './realPositions';

const NOW = 1_700_000_000_000;

function protective(id: string, orderType: string, trigger: string | null, overrides: Partial<RealOrder> = {}): RealOrder {
  return {
    order_id: id, status: 'OPEN', origin: 'manual', source: 'dashboard',
    terms: { market: 'futures', symbol: 'BTCUSDT', side: 'SELL', order_type: orderType, quantity: '0', price: null,
      time_in_force: null, reduce_only: false, close_position: true, trigger_price: trigger },
    terms_digest: 'abcdef0123456789', created_at_ms: NOW, updated_at_ms: NOW, confirm_by_ms: null, confirmed_by: null,
    exchange_order_id: null, executed_qty: 0, avg_price: 0, reason: '', history: [], summary: null, replaces: null,
    ...overrides,
  };
}

describe("a position's side and size", () => {
  it('reads the side from the sign of the quantity and the size from its magnitude', () => {
    expect([positionSide(0.01), positionSide(-0.25)]).toEqual(['long', 'short']);
    expect([positionSize(0.01), positionSize(-0.25)]).toEqual([0.01, 0.25]);
  });
});

describe("a symbol's stop loss and take profit", () => {
  it('are its open stop and take-profit orders, the newest of each kind while a moved one replaces the old', () => {
    const old = protective('p-old', 'STOP_MARKET', '19000.0');
    const moved = protective('p-new', 'STOP_MARKET', '19500.0', { created_at_ms: NOW + 1, replaces: 'p-old' });
    const take = protective('p-take', 'TAKE_PROFIT_MARKET', '25000.0');
    expect(protectionOf([old, moved, take], 'BTCUSDT')).toEqual({ stopLoss: moved, takeProfit: take });
    expect(protectionOf([moved, old], 'BTCUSDT').stopLoss).toBe(moved);
    expect(triggerOf(moved)).toBe(19_500);
  });
  it('leave out orders that are not resting on the exchange, of other symbols or of other types', () => {
    const orders = [
      protective('p-wait', 'STOP_MARKET', '18000.0', { status: 'AWAITING_CONFIRMATION', created_at_ms: NOW + 5 }),
      protective('p-gone', 'STOP_MARKET', '18500.0', { status: 'CANCELED', created_at_ms: NOW + 6 }),
      protective('p-eth', 'STOP_MARKET', '1500.0', { terms: { ...protective('x', 'STOP_MARKET', null).terms, symbol: 'ETHUSDT' } }),
      protective('m-limit', 'LIMIT', null),
    ];
    expect(protectionOf(orders, 'BTCUSDT')).toEqual({ stopLoss: null, takeProfit: null });
    expect(protectionOf(orders, 'ETHUSDT').stopLoss?.order_id).toBe('p-eth');
    expect([triggerOf(null), triggerOf(protective('p', 'STOP_MARKET', null)), triggerOf(protective('p', 'STOP_MARKET', 'x'))])
      .toEqual([null, null, null]);
  });
});

describe('the stop loss and take profit form', () => {
  const long = { position_amt: 0.01, mark_price: 20_000 };
  const short = { position_amt: -0.01, mark_price: 20_000 };
  it('sends the fields filled in, a stop below the mark of a long and a take profit above it', () => {
    expect(protectionBody({ stopLoss: ' 19500.5 ', takeProfit: '' }, long)).toEqual({ body: { stop_loss: 19_500.5 } });
    expect(protectionBody({ stopLoss: '', takeProfit: '21000' }, long)).toEqual({ body: { take_profit: 21_000 } });
    expect(protectionBody({ stopLoss: '19000', takeProfit: '21000' }, long)).toEqual({ body: { stop_loss: 19_000, take_profit: 21_000 } });
  });
  it('mirrors the sides for a short', () => {
    expect(protectionBody({ stopLoss: '20500', takeProfit: '19000' }, short)).toEqual({ body: { stop_loss: 20_500, take_profit: 19_000 } });
    expect(protectionBody({ stopLoss: '19500', takeProfit: '' }, short))
      .toEqual({ field: 'stopLoss', message: 'the stop loss of a short lies above the mark price 20000' });
    expect(protectionBody({ stopLoss: '', takeProfit: '21000' }, short))
      .toEqual({ field: 'takeProfit', message: 'the take profit of a short lies below the mark price 20000' });
  });
  it('names the wrong field and why, and asks for at least one', () => {
    expect(protectionBody({ stopLoss: '20000', takeProfit: '' }, long))
      .toEqual({ field: 'stopLoss', message: 'the stop loss of a long lies below the mark price 20000' });
    expect(protectionBody({ stopLoss: '19000', takeProfit: '19999' }, long).field).toBe('takeProfit');
    for (const stopLoss of ['0', '-5', 'abc', 'Infinity']) {
      expect(protectionBody({ stopLoss, takeProfit: '' }, long)).toEqual({ field: 'stopLoss', message: 'the stop loss must be a price above 0' });
    }
    expect(protectionBody({ stopLoss: ' ', takeProfit: '' }, long)).toEqual({ field: null, message: 'give a stop loss, a take profit or both' });
  });
});

describe('the reconciliation report', () => {
  it("names each difference's kind and keeps the server's sentence", () => {
    const report = { ok: false, checked_at_ms: NOW, differences: [
      { kind: 'position_mismatch', symbol: 'BTCUSDT', expected: 0.01, actual: 0.02, detail: 'Durabot expects 0.01 BTCUSDT; the exchange holds 0.02' },
      { kind: 'hedge_mode', symbol: null, expected: 'one-way', actual: 'hedge', detail: 'hedge mode is not supported' },
      { kind: 'something_new', symbol: null, expected: null, actual: null, detail: 'why' },
    ] };
    expect(differenceLines(report)).toEqual([
      { kind: 'position_mismatch', label: 'Position differs', detail: 'Durabot expects 0.01 BTCUSDT; the exchange holds 0.02' },
      { kind: 'hedge_mode', label: 'Hedge mode', detail: 'hedge mode is not supported' },
      { kind: 'something_new', label: 'something new', detail: 'why' },
    ]);
    expect(differenceLines({ ok: true, checked_at_ms: NOW, differences: [] })).toEqual([]);
  });
});
