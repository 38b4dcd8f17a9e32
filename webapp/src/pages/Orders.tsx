import { useMemo, useState, type FormEvent } from 'react';
import { call, errorText, http, type Schemas } from '../api/client';
import { useLiveEvents } from '../components/live';
import { usePriceFormat } from '../components/symbols';
import { Card, ErrorNote } from '../components/ui';
import { formatNumber, formatTime } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { orderHistory, type OrderRow } from '../lib/orderHistory';

type OrderIn = Schemas['ManualOrderIn'];

const optional = (text: string): number | undefined => (text.trim() === '' ? undefined : Number(text));
const SHOWN = 50;

function OrderHistory({ pending }: { pending: Record<string, unknown>[] }) {
  const open = useLoad(() => call(() => http.GET('/api/paper-trading/trades/open')));
  const closed = useLoad(() => call(() => http.GET('/api/paper-trading/trades/closed', { params: { query: { limit: 500 } } })));
  const [shown, setShown] = useState(SHOWN);
  const priceOf = usePriceFormat();
  useLiveEvents(['TradeExecuted', 'PositionUpdate'], () => {
    open.reload();
    closed.reload();
  });
  const rows = useMemo(() => orderHistory(open.data ?? [], closed.data ?? [], pending), [open.data, closed.data, pending]);
  return (
    <Card title="Order history" wide>
      <p className="muted">
        Every fill of the session's trades (market and filled limit orders, signal entries, stops, take profits) and the
        orders still resting, newest first. Cancelled orders are not kept.
      </p>
      <ErrorNote message={open.error ?? closed.error} />
      {rows.length === 0 ? (
        <p className="muted" data-testid="no-order-history">No orders yet.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="order-history">
            <thead>
              <tr><th>Time</th><th>Ref</th><th>Symbol</th><th>Side</th><th>Order</th><th>Qty</th><th>Price</th><th>Fee</th><th>Status</th><th>Note</th></tr>
            </thead>
            <tbody>
              {rows.slice(0, shown).map((r: OrderRow) => (
                <tr key={r.key} data-testid={`order-${r.key}`} data-price={r.price ?? ''}>
                  <td>{formatTime(r.time)}</td><td>{r.ref}</td><td>{r.symbol}</td>
                  <td className={r.action === 'buy' ? 'long' : 'short'}>{r.action}</td><td>{r.what}</td>
                  <td>{formatNumber(r.quantity, 4)}</td><td>{priceOf(r.symbol, r.price)}</td><td>{formatNumber(r.fee, 6)}</td>
                  <td>{r.status}</td><td>{r.note}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {rows.length > shown ? (
        <button onClick={() => setShown(shown + SHOWN)}>Show {Math.min(SHOWN, rows.length - shown)} more of {rows.length - shown}</button>
      ) : null}
    </Card>
  );
}

export function Orders() {
  const pending = useLoad(() => call(() => http.GET('/api/paper-trading/pending-orders')));
  const [form, setForm] = useState({ symbol: '', side: 'long', order_type: 'limit', quantity: '', limit_price: '', stop_price: '', stop_loss: '', take_profit: '' });
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const priceOf = usePriceFormat();
  useLiveEvents(['TradeExecuted', 'PositionUpdate'], pending.reload);
  const set = (key: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [key]: e.target.value });

  const place = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setNote(null);
    const body: OrderIn = {
      symbol: form.symbol.trim().toUpperCase(), side: form.side as OrderIn['side'], order_type: form.order_type as OrderIn['order_type'],
      quantity: Number(form.quantity), reduce_only: false, limit_price: optional(form.limit_price), stop_price: optional(form.stop_price),
      stop_loss: optional(form.stop_loss), take_profit: optional(form.take_profit),
    };
    try {
      const result = await call(() => http.POST('/api/paper-trading/orders', { body }));
      setNote(result.order ? `Order ${String((result.order as { id?: unknown }).id)} placed.` : 'Order filled.');
      pending.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  const cancel = async (id: number) => {
    setError(null);
    try {
      await call(() => http.DELETE('/api/paper-trading/pending-orders/{order_id}', { params: { path: { order_id: id } } }));
      pending.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  const rows = pending.data ?? [];
  return (
    <div className="grid">
      <Card title="Place an order">
        <form className="form inline-form" onSubmit={place} aria-label="Place an order">
          <label>Symbol<input required value={form.symbol} onChange={set('symbol')} placeholder="BTCUSDT" /></label>
          <label>Side<select value={form.side} onChange={set('side')}><option>long</option><option>short</option></select></label>
          <label>Type<select value={form.order_type} onChange={set('order_type')}><option>market</option><option>limit</option><option>stop_limit</option></select></label>
          <label>Quantity<input required inputMode="decimal" value={form.quantity} onChange={set('quantity')} /></label>
          <label>Limit price<input inputMode="decimal" value={form.limit_price} onChange={set('limit_price')} /></label>
          <label>Stop price<input inputMode="decimal" value={form.stop_price} onChange={set('stop_price')} /></label>
          <label>Stop loss<input inputMode="decimal" value={form.stop_loss} onChange={set('stop_loss')} /></label>
          <label>Take profit<input inputMode="decimal" value={form.take_profit} onChange={set('take_profit')} /></label>
          <button type="submit" className="primary">Place order</button>
        </form>
        <ErrorNote message={error} />
        {note ? <p className="ok" role="status">{note}</p> : null}
      </Card>
      <Card title="Pending orders">
        <ErrorNote message={pending.error} />
        {rows.length === 0 ? (
          <p className="muted">No pending orders.</p>
        ) : (
          <div className="table-wrap">
            <table data-testid="pending-orders">
              <thead><tr><th>#</th><th>Symbol</th><th>Side</th><th>Type</th><th>Qty</th><th>Limit</th><th>Stop</th><th /></tr></thead>
              <tbody>
                {rows.map((o) => {
                  const id = Number(o.id);
                  return (
                    <tr key={id} data-testid={`pending-${id}`}>
                      <td>{id}</td><td>{String(o.symbol)}</td><td>{String(o.side)}</td><td>{String(o.type ?? o.order_type)}</td>
                      <td>{formatNumber(Number(o.quantity), 4)}</td>
                      <td>{priceOf(o.symbol, o.limit_price as number | null)}</td><td>{priceOf(o.symbol, o.stop_price as number | null)}</td>
                      <td><button className="small" onClick={() => void cancel(id)} aria-label={`Cancel order ${id}`}>Cancel</button></td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      <OrderHistory pending={rows} />
    </div>
  );
}
