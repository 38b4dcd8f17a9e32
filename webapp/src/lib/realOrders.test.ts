import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FORM, confirmCountdown, confirmExpired, isOpen, orderBody, orderWhat, outcomeText, riskCheckLines, serverOffset,
  statusTone, summaryLines, withUpdate, type RealOrder,
} from './realOrders';

const NOW = 1_700_000_000_000;

function order(overrides: Partial<RealOrder> = {}): RealOrder {
  return {
    order_id: 'web-0123456789abcdef', status: 'AWAITING_CONFIRMATION', origin: 'manual', source: 'dashboard',
    terms: { market: 'futures', symbol: 'BTCUSDT', side: 'BUY', order_type: 'MARKET', quantity: '0.010', price: null,
      time_in_force: null, reduce_only: false, close_position: false },
    terms_digest: 'abcdef0123456789', created_at_ms: NOW, updated_at_ms: NOW, confirm_by_ms: NOW + 60_000,
    confirmed_by: null, exchange_order_id: null, executed_qty: 0, avg_price: 0, reason: '', history: [],
    summary: { expected_price: 42_000.5, notional: 420.005, fee: 0.2100025, leverage: 5, liquidation_price: 33_768.4,
      risk_checks: [
        { check: 'min_notional', passed: true, detail: "notional 420.01 against the exchange's minimum 100" },
        { check: 'max_order_notional', passed: false, detail: 'notional 420.01 against the limit 400 per order' },
      ] },
    ...overrides,
  };
}

describe('the real order form', () => {
  const form = { ...DEFAULT_FORM, quantity: '0.01' };
  it('makes the request body of a MARKET order, the symbol upper-cased and without a price', () => {
    expect(orderBody({ ...form, symbol: ' btcusdt ', price: '123' })).toEqual({
      body: { market: 'futures', symbol: 'BTCUSDT', side: 'BUY', order_type: 'MARKET', quantity: 0.01, leverage: 1,
        reduce_only: false, close_position: false },
    });
  });
  it('takes the price of a LIMIT order, and the leverage and reduce-only flag as set', () => {
    const checked = orderBody({ ...form, side: 'SELL', orderType: 'LIMIT', price: '41000.5', leverage: '10', reduceOnly: true });
    expect(checked.body).toEqual({ market: 'futures', symbol: 'BTCUSDT', side: 'SELL', order_type: 'LIMIT',
      quantity: 0.01, price: 41000.5, leverage: 10, reduce_only: true, close_position: false });
  });
  it('sends a spot order without leverage or reduce-only, whatever the futures fields held', () => {
    const checked = orderBody({ ...form, market: 'spot', leverage: '10', reduceOnly: true });
    expect(checked.body).toEqual({ market: 'spot', symbol: 'BTCUSDT', side: 'BUY', order_type: 'MARKET',
      quantity: 0.01, leverage: 1, reduce_only: false, close_position: false });
  });
  it('names the first wrong field and why', () => {
    expect(orderBody({ ...form, symbol: 'BTC' }).field).toBe('symbol');
    expect(orderBody({ ...form, symbol: 'BTC-USDT' }).field).toBe('symbol');
    for (const quantity of ['', '0', '-1', 'abc', 'Infinity']) expect(orderBody({ ...form, quantity }).field).toBe('quantity');
    for (const leverage of ['0', '126', '2.5', '']) expect(orderBody({ ...form, leverage }).field).toBe('leverage');
    const noPrice = orderBody({ ...form, orderType: 'LIMIT', price: '' });
    expect(noPrice).toEqual({ field: 'price', message: 'a LIMIT order needs a price above 0' });
  });
});

describe('the time left to confirm', () => {
  it('counts down to the deadline and says when it has passed, or the server said the order expired', () => {
    expect(confirmCountdown(order(), NOW)).toBe('Confirm within 1m 00s');
    expect(confirmCountdown(order(), NOW + 52_300)).toBe('Confirm within 8s');
    expect(confirmExpired(order(), NOW + 59_999)).toBe(false);
    expect(confirmExpired(order(), NOW + 60_000)).toBe(true);
    expect(confirmCountdown(order(), NOW + 60_000)).toBe('expired');
    expect(confirmExpired(order({ status: 'EXPIRED' }), NOW)).toBe(true);
    expect(confirmExpired(order({ confirm_by_ms: null, status: 'OPEN' }), NOW + 1e9)).toBe(false);
  });
  it("runs on the server's clock only when its stamp lies outside the request's round trip", () => {
    expect(serverOffset(NOW + 50, NOW, NOW + 100)).toBe(0);
    expect(serverOffset(NOW + 3_100, NOW, NOW + 100)).toBe(3_000);
    expect(serverOffset(NOW - 2_000, NOW, NOW + 100)).toBe(-2_000);
    expect(serverOffset(Number.NaN, NOW, NOW + 100)).toBe(0);
  });
});

describe("the confirmation dialog's summary", () => {
  it('lists the terms and the costs, prices on the symbol tick', () => {
    const lines = Object.fromEntries(summaryLines(order(), 1).map((l) => [l.key, `${l.label}: ${l.text}`]));
    expect(lines).toEqual({
      symbol: 'Symbol: BTCUSDT', side: 'Side: BUY', type: 'Type: MARKET', quantity: 'Quantity: 0.010',
      expected_price: 'Expected price: 42,000.5', notional: 'Notional: 420.01 USDT', fee: 'Fee (estimate): 0.2100 USDT',
      leverage: 'Leverage: 5×', liquidation_price: 'Liquidation price (estimate): 33,768.4',
    });
  });
  it('shows a limit price and reduce-only, and no liquidation price when there is none', () => {
    const limit = order({ terms: { ...order().terms, order_type: 'LIMIT', price: '41000.0', reduce_only: true },
      summary: { ...order().summary!, liquidation_price: null } });
    const lines = Object.fromEntries(summaryLines(limit).map((l) => [l.key, l.text]));
    expect(lines.type).toBe('LIMIT (reduce only)');
    expect(lines.limit).toBe('41000.0');
    expect(lines.liquidation_price).toBe('none');
    expect(summaryLines(order({ summary: null })).map((l) => l.key)).toEqual(['symbol', 'side', 'type', 'quantity']);
  });
  it('shows the trigger of a protective order and that it closes the whole position', () => {
    const stop = order({ terms: { ...order().terms, side: 'SELL', order_type: 'STOP_MARKET', quantity: '0', close_position: true,
      trigger_price: '19500.0' } });
    const lines = Object.fromEntries(summaryLines(stop).map((l) => [l.key, l.text]));
    expect([lines.quantity, lines.trigger]).toEqual(['the whole position', '19500.0']);
    expect(orderWhat(stop.terms)).toBe('stop loss of BTCUSDT at 19500.0');
    expect(orderWhat({ ...stop.terms, order_type: 'TAKE_PROFIT_MARKET' })).toBe('take profit of BTCUSDT at 19500.0');
    expect(outcomeText({ ...stop, status: 'OPEN' })).toBe('stop loss of BTCUSDT at 19500.0 is on the exchange.');
    expect(outcomeText(stop)).toBe('stop loss of BTCUSDT at 19500.0 awaits your confirmation.');
  });
  it("gives each risk check's verdict with its reason", () => {
    expect(riskCheckLines(order())).toEqual([
      { check: 'min_notional', label: "Exchange's minimum notional", passed: true,
        text: "Passed — notional 420.01 against the exchange's minimum 100" },
      { check: 'max_order_notional', label: 'Notional limit per order', passed: false,
        text: 'Failed — notional 420.01 against the limit 400 per order' },
    ]);
    const other = order({ summary: { ...order().summary!, risk_checks: [{ check: 'max_leverage', passed: true, detail: 'ok' }] } });
    expect(riskCheckLines(other)[0].label).toBe('max leverage');
  });
});

describe('order states and live updates', () => {
  it('tells open orders from final ones', () => {
    for (const s of ['AWAITING_CONFIRMATION', 'SUBMITTING', 'UNKNOWN', 'OPEN', 'PARTIALLY_FILLED']) expect(isOpen(s)).toBe(true);
    for (const s of ['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'NOT_PLACED']) expect(isOpen(s)).toBe(false);
    expect([statusTone('FILLED'), statusTone('EXPIRED'), statusTone('CANCELED'), statusTone('OPEN')])
      .toEqual(['applied', 'rejected', 'neutral', 'awaiting']);
  });
  it("applies an OrderUpdate to its own order only", () => {
    const held = order();
    const filled = withUpdate(held, { order_id: held.order_id, status: 'FILLED', executed_qty: 0.01, avg_price: 42_001, reason: '' });
    expect([filled.status, filled.executed_qty, filled.avg_price]).toEqual(['FILLED', 0.01, 42_001]);
    expect(withUpdate(held, { order_id: 'another', status: 'FILLED' })).toBe(held);
    expect(withUpdate(held, {})).toBe(held); // a resync carries no order
    expect(withUpdate(null, { order_id: held.order_id, status: 'FILLED' })).toBeNull();
    const expired = withUpdate(held, { order_id: held.order_id, status: 'EXPIRED', reason: 'not confirmed in time' });
    expect([expired.status, expired.reason, expired.executed_qty]).toEqual(['EXPIRED', 'not confirmed in time', 0]);
  });
  it('says what came of an order in one sentence', () => {
    expect(outcomeText(order())).toBe('BUY 0.010 BTCUSDT awaits your confirmation.');
    expect(outcomeText(order({ status: 'FILLED', avg_price: 42_001.5 }))).toBe('BUY 0.010 BTCUSDT filled at 42,001.50.');
    expect(outcomeText(order({ status: 'REJECTED', reason: 'the exchange refused it' })))
      .toBe('BUY 0.010 BTCUSDT: REJECTED — the exchange refused it.');
    expect(outcomeText(order({ status: 'PARTIALLY_FILLED', executed_qty: 0.004 })))
      .toBe('BUY 0.010 BTCUSDT is on the exchange (partially filled, 0.004 filled).');
  });
});
