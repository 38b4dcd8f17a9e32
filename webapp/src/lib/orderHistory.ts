// The session's orders as a trader reads them, from what the API keeps: each trade's entry and exit
// fills (market orders, signal entries, filled limits, stops and take profits alike), its partial
// closes, and the orders still resting. A cancelled order leaves no record the API returns.

type Row = Record<string, unknown>;

export interface OrderRow {
  key: string;
  time: number; // ms, market time of the fill, or when a resting order was placed
  ref: string; // "#12" (trade) or "order 3" (resting)
  symbol: string;
  action: 'buy' | 'sell';
  what: string; // "open long", "close short", "partial close long", "limit (resting)"
  quantity: number;
  price: number | null;
  fee: number | null;
  status: 'filled' | 'open';
  note: string; // why an exit happened (manual, stop_loss, …) or a resting order's trigger
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const opens = (side: unknown): 'buy' | 'sell' => (side === 'short' ? 'sell' : 'buy');
const closes = (side: unknown): 'buy' | 'sell' => (side === 'short' ? 'buy' : 'sell');

/** Newest first. ``closed`` are the API's closed-trade rows ({trade, partial_closes}). */
export function orderHistory(open: readonly Row[], closed: readonly { trade: Row; partial_closes?: Row[] }[],
  pending: readonly Row[]): OrderRow[] {
  const rows: OrderRow[] = [];
  const entry = (id: unknown, t: Row, quantity: number, fee: number | null): OrderRow => ({
    key: `entry-${String(id)}`, time: Number(t.entry_time), ref: `#${String(id)}`, symbol: String(t.symbol),
    action: opens(t.side), what: `open ${String(t.side)}`, quantity, price: num(t.entry_price), fee,
    status: 'filled', note: '',
  });
  const exit = (key: string, t: Row, what: string): OrderRow => ({
    key, time: Number(t.exit_time), ref: `#${String(t.id)}`, symbol: String(t.symbol), action: closes(t.side),
    what: `${what} ${String(t.side)}`, quantity: num(t.quantity) ?? 0, price: num(t.exit_price), fee: num(t.exit_fee),
    status: 'filled', note: String(t.close_reason ?? ''),
  });
  for (const p of open) rows.push(entry(p.trade_id, p, num(p.quantity) ?? 0, num(p.entry_fee)));
  for (const { trade, partial_closes: parts = [] } of closed) {
    // A partial close is a trade record of the part it closed; the entry filled all parts at once.
    const quantity = [trade, ...parts].reduce((sum, t) => sum + (num(t.quantity) ?? 0), 0);
    const fee = [trade, ...parts].reduce((sum, t) => sum + (num(t.entry_fee) ?? 0), 0);
    rows.push(entry(trade.id, trade, quantity, fee));
    parts.forEach((part, i) => rows.push(exit(`part-${String(trade.id)}-${i}`, part, 'partial close')));
    rows.push(exit(`exit-${String(trade.id)}`, trade, 'close'));
  }
  for (const o of pending) {
    const stop = num(o.stop_price);
    rows.push({
      key: `order-${String(o.id)}`, time: Number(o.created_time), ref: `order ${String(o.id)}`, symbol: String(o.symbol),
      action: o.reduce_only ? closes(o.side) : opens(o.side),
      what: `${String(o.type)} to ${o.reduce_only ? 'reduce' : 'open'} ${String(o.side)}`,
      quantity: (num(o.quantity) ?? 0) - (num(o.filled_quantity) ?? 0), price: num(o.limit_price), fee: null, status: 'open',
      note: stop != null ? `${o.triggered ? 'triggered at' : 'stop'} ${stop}` : '',
    });
  }
  return rows.sort((a, b) => b.time - a.time || b.key.localeCompare(a.key));
}
