// The Real trading page's logic, apart from React: the order form's checks, what the confirmation dialog
// shows of an order's summary, how long is left to confirm, and the OrderUpdate events of the live
// connection applied to an order held on the page.
import type { Schemas } from '../api/client';
import { formatNumber, formatPrice } from './format';
import { countdownText } from './tuning';

export type RealOrder = Schemas['OrderOut'];
export type RealOrderIn = Schemas['OrderIn'];

export const AWAITING = 'AWAITING_CONFIRMATION';
/** States after which nothing about the order changes any more (core/order_contracts.py FINAL_STATES). */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED', 'NOT_PLACED']);

/** Whether the order can still be cancelled: awaiting confirmation, in flight or resting on the exchange. */
export function isOpen(status: string): boolean {
  return !FINAL_STATUSES.has(status);
}

/** The pill colour of a status: filled good, refused or lapsed bad, everything in between awaiting. */
export function statusTone(status: string): 'applied' | 'rejected' | 'awaiting' | 'neutral' {
  if (status === 'FILLED') return 'applied';
  if (status === 'REJECTED' || status === 'EXPIRED' || status === 'NOT_PLACED') return 'rejected';
  if (status === 'CANCELED') return 'neutral';
  return 'awaiting';
}

export interface OrderForm {
  market: 'futures' | 'spot';
  symbol: string;
  side: 'BUY' | 'SELL';
  orderType: 'MARKET' | 'LIMIT';
  quantity: string;
  price: string;
  leverage: string;
  reduceOnly: boolean;
}

export const DEFAULT_FORM: OrderForm = {
  market: 'futures', symbol: 'BTCUSDT', side: 'BUY', orderType: 'MARKET', quantity: '', price: '', leverage: '1', reduceOnly: false,
};

export type FormCheck = { body: RealOrderIn; field?: undefined; message?: undefined } | { body?: undefined; field: keyof OrderForm; message: string };

function positive(text: string): number | null {
  const value = Number(text.trim());
  return text.trim() !== '' && Number.isFinite(value) && value > 0 ? value : null;
}

/** The request body of the form, or the first field that is wrong and why (the server checks again, on
 * the symbol's step and tick). */
export function orderBody(form: OrderForm): FormCheck {
  const symbol = form.symbol.trim().toUpperCase();
  if (!/^[A-Z0-9]{5,20}$/.test(symbol)) return { field: 'symbol', message: 'a symbol is 5-20 letters or digits, e.g. BTCUSDT' };
  const quantity = positive(form.quantity);
  if (quantity === null) return { field: 'quantity', message: 'the quantity must be a number above 0' };
  // A spot order buys or sells the asset itself: no leverage, no position to reduce.
  const spot = form.market === 'spot';
  const leverage = spot ? 1 : Number(form.leverage.trim());
  if (!Number.isInteger(leverage) || leverage < 1 || leverage > 125) {
    return { field: 'leverage', message: 'the leverage is a whole number from 1 to 125' };
  }
  const body: RealOrderIn = {
    market: form.market, symbol, side: form.side, order_type: form.orderType, quantity, leverage,
    reduce_only: spot ? false : form.reduceOnly, close_position: false,
  };
  if (form.orderType === 'LIMIT') {
    const price = positive(form.price);
    if (price === null) return { field: 'price', message: 'a LIMIT order needs a price above 0' };
    body.price = price;
  }
  return { body };
}

/** The browser's clock against the server's, from an answer that stamped ``serverMs`` between sending
 * (``sentMs``) and receiving (``receivedMs``): 0 when the stamp lies in that span (the clocks agree as
 * far as can be told), else the distance to the nearer end. */
export function serverOffset(serverMs: number, sentMs: number, receivedMs: number): number {
  if (!Number.isFinite(serverMs)) return 0;
  if (serverMs < sentMs) return serverMs - sentMs;
  if (serverMs > receivedMs) return serverMs - receivedMs;
  return 0;
}

/** Whether the time to confirm has passed (on the server's clock) or the server said the order expired. */
export function confirmExpired(order: Pick<RealOrder, 'status' | 'confirm_by_ms'>, serverNowMs: number): boolean {
  if (order.status === 'EXPIRED') return true;
  return order.confirm_by_ms != null && order.confirm_by_ms <= serverNowMs;
}

/** "Confirm within 42s", or "expired". */
export function confirmCountdown(order: Pick<RealOrder, 'status' | 'confirm_by_ms'>, serverNowMs: number): string {
  if (confirmExpired(order, serverNowMs)) return 'expired';
  return `Confirm within ${countdownText(order.confirm_by_ms, serverNowMs)}`;
}

const CHECK_LABELS: Record<string, string> = {
  min_notional: "Exchange's minimum notional",
  max_order_notional: 'Notional limit per order',
};

export interface SummaryLine {
  key: string;
  label: string;
  text: string;
}

/** What an order does, in a few words: "BUY 0.010 BTCUSDT", or for a protective order that closes the
 * whole position when triggered, "stop loss of BTCUSDT at 19500.0". */
export function orderWhat(terms: RealOrder['terms']): string {
  if (terms.close_position) {
    const kind = terms.order_type === 'TAKE_PROFIT_MARKET' ? 'take profit' : 'stop loss';
    return `${kind} of ${terms.symbol} at ${terms.trigger_price ?? '?'}`;
  }
  return `${terms.side} ${terms.quantity} ${terms.symbol}`;
}

/** The order's terms and summary as the confirmation dialog lists them, in reading order. */
export function summaryLines(order: RealOrder, priceDecimals?: number | null): SummaryLine[] {
  const t = order.terms;
  const s = order.summary;
  const price = (v: number | null | undefined) => formatPrice(v, priceDecimals);
  const quote = t.symbol.endsWith('USDT') ? ' USDT' : '';
  const lines: SummaryLine[] = [
    { key: 'symbol', label: 'Symbol', text: t.symbol },
    { key: 'side', label: 'Side', text: t.side },
    { key: 'type', label: 'Type', text: t.order_type + (t.reduce_only ? ' (reduce only)' : '') },
    { key: 'quantity', label: 'Quantity', text: t.close_position ? 'the whole position' : t.quantity },
  ];
  if (t.price != null) lines.push({ key: 'limit', label: 'Limit price', text: t.price });
  if (t.trigger_price != null) lines.push({ key: 'trigger', label: 'Trigger price', text: t.trigger_price });
  if (s) {
    lines.push(
      { key: 'expected_price', label: 'Expected price', text: price(s.expected_price) },
      { key: 'notional', label: 'Notional', text: formatNumber(s.notional, 2) + quote },
      { key: 'fee', label: 'Fee (estimate)', text: formatNumber(s.fee, 4) + quote },
      { key: 'leverage', label: 'Leverage', text: `${s.leverage}×` },
      { key: 'liquidation_price', label: 'Liquidation price (estimate)', text: s.liquidation_price == null ? 'none' : price(s.liquidation_price) },
    );
  }
  return lines;
}

export interface CheckLine {
  check: string;
  label: string;
  passed: boolean;
  text: string;
}

/** Each risk check's verdict: "Passed — notional 412.30 against the limit 5000 per order". */
export function riskCheckLines(order: RealOrder): CheckLine[] {
  return (order.summary?.risk_checks ?? []).map((c) => ({
    check: c.check,
    label: CHECK_LABELS[c.check] ?? c.check.replace(/_/g, ' '),
    passed: c.passed,
    text: `${c.passed ? 'Passed' : 'Failed'} — ${c.detail}`,
  }));
}

/** The fields of an OrderUpdate event (docs/websocket.md). */
export interface OrderUpdateData {
  order_id: string;
  status: string;
  executed_qty?: number;
  avg_price?: number;
  reason?: string;
  confirm_by_ms?: number | null;
}

/** ``order`` with what the event says of it (the event of another order leaves it as it is). */
export function withUpdate<T extends RealOrder | null>(order: T, data: Partial<OrderUpdateData>): T {
  if (!order || data.order_id !== order.order_id || typeof data.status !== 'string') return order;
  return {
    ...order,
    status: data.status,
    executed_qty: typeof data.executed_qty === 'number' ? data.executed_qty : order.executed_qty,
    avg_price: typeof data.avg_price === 'number' ? data.avg_price : order.avg_price,
    reason: typeof data.reason === 'string' ? data.reason : order.reason,
  };
}

/** What came of an order, in one sentence, for the page's note. */
export function outcomeText(order: RealOrder): string {
  const what = orderWhat(order.terms);
  if (order.terms.close_position && order.status === 'OPEN') return `${what} is on the exchange.`;
  switch (order.status) {
    case AWAITING:
      return `${what} awaits your confirmation.`;
    case 'FILLED':
      return `${what} filled at ${formatPrice(order.avg_price)}.`;
    case 'OPEN':
    case 'PARTIALLY_FILLED':
      return `${what} is on the exchange (${order.status.toLowerCase().replace('_', ' ')}, ${order.executed_qty} filled).`;
    default:
      return `${what}: ${order.status}${order.reason ? ` — ${order.reason}` : ''}.`;
  }
}
