// Real trading: the futures account (wallet, positions with their stop loss and take profit, reconciliation:
// components/RealAccount.tsx) and manual orders that go to the exchange with the user's saved API key
// (USDⓈ-M futures), in two steps. Requesting one shows the server's summary in a confirmation dialog with a deadline; only a
// confirmation sends it. A reduce-only order goes out at once. The orders table follows the OrderUpdate
// events of the live connection (and polls while that is down). Confirmation secrets stay in memory.
import { useMemo, useState } from 'react';
import { call, http, type Schemas } from '../api/client';
import { useLive, useLiveEvents } from '../components/live';
import { RealAccount } from '../components/RealAccount';
import { RealMoneyBanner, RealOrderDialog } from '../components/RealOrderDialog';
import { RealSession } from '../components/RealSession';
import { Card, ErrorNote } from '../components/ui';
import { formatPrice, formatTime } from '../lib/format';
import { useAction, useCheckedSubmit, useInterval, useLoad } from '../lib/hooks';
import {
  AWAITING, DEFAULT_FORM, isOpen, orderBody, outcomeText, serverOffset, statusTone, withUpdate, type OrderForm,
  type RealOrder,
} from '../lib/realOrders';

type Requested = Schemas['OrderRequestedOut'];
type ProtectionOut = Schemas['ProtectionOut'];

interface Confirming {
  order: RealOrder;
  token: string;
  offset: number;
}

/** Runs a request that answers an order with its confirmation secret, and the clock offset it shows. */
async function withOffset(send: () => Promise<Requested>): Promise<{ requested: Requested; offset: number }> {
  const sent = Date.now();
  const requested = await send();
  return { requested, offset: serverOffset(requested.order.updated_at_ms, sent, Date.now()) };
}

function OrderFormCard({ symbols, onRequested }: {
  symbols: string[];
  onRequested: (requested: Requested, offset: number) => void;
}) {
  const [form, setForm] = useState<OrderForm>(DEFAULT_FORM);
  const set = <K extends keyof OrderForm>(key: K, value: OrderForm[K]) => setForm((f) => ({ ...f, [key]: value }));
  const { busy, error, invalid, submit } = useCheckedSubmit(() => orderBody(form), async (body) => {
    // Each click is an order of its own: call() gives every write a fresh Idempotency-Key.
    const { requested, offset } = await withOffset(() => call(() => http.POST('/api/real-trading/orders', { body })));
    onRequested(requested, offset);
  });

  const limit = form.orderType === 'LIMIT';
  const spot = form.market === 'spot';
  return (
    <Card title="New real order">
      <form className="form" aria-label="New real order" onSubmit={submit} noValidate>
        <div className="fields">
          <label>
            Symbol
            <input value={form.symbol} list="real-symbols" autoComplete="off" spellCheck={false} maxLength={20}
              aria-invalid={invalid === 'symbol'} onChange={(e) => set('symbol', e.target.value)} />
            <datalist id="real-symbols">{symbols.map((s) => <option key={s} value={s} />)}</datalist>
          </label>
          <label>
            Market
            <select value={form.market} onChange={(e) => set('market', e.target.value as OrderForm['market'])}>
              <option value="futures">USDⓈ-M futures</option>
              <option value="spot">Spot</option>
            </select>
          </label>
          <label>
            Side
            <select value={form.side} onChange={(e) => set('side', e.target.value as OrderForm['side'])}>
              <option value="BUY">BUY (long)</option>
              <option value="SELL">SELL (short)</option>
            </select>
          </label>
          <label>
            Type
            <select value={form.orderType} onChange={(e) => set('orderType', e.target.value as OrderForm['orderType'])}>
              <option value="MARKET">MARKET</option>
              <option value="LIMIT">LIMIT</option>
            </select>
          </label>
          <label>
            Quantity
            <input value={form.quantity} inputMode="decimal" autoComplete="off" aria-invalid={invalid === 'quantity'}
              onChange={(e) => set('quantity', e.target.value)} />
          </label>
          {limit ? (
            <label>
              Limit price
              <input value={form.price} inputMode="decimal" autoComplete="off" aria-invalid={invalid === 'price'}
                onChange={(e) => set('price', e.target.value)} />
            </label>
          ) : null}
          {spot ? null : (
            <label>
              Leverage
              <input value={form.leverage} inputMode="numeric" autoComplete="off" aria-invalid={invalid === 'leverage'}
                onChange={(e) => set('leverage', e.target.value)} />
            </label>
          )}
        </div>
        {spot ? null : (
          <label className="check">
            <input type="checkbox" checked={form.reduceOnly} onChange={(e) => set('reduceOnly', e.target.checked)} />
            Reduce only (only shrinks a position: sent at once, without a confirmation step)
          </label>
        )}
        <ErrorNote message={error} />
        <div className="button-row">
          <button type="submit" className="danger" disabled={busy}>
            {form.reduceOnly && !spot ? 'Send reduce-only REAL order' : 'Review REAL order'}
          </button>
        </div>
      </form>
    </Card>
  );
}

function OrdersTable({ orders, onReview, onCancel, busy }: {
  orders: RealOrder[];
  onReview: (order: RealOrder) => void;
  onCancel: (order: RealOrder) => void;
  busy: boolean;
}) {
  if (!orders.length) return <p className="muted" data-testid="no-real-orders">No real orders yet.</p>;
  return (
    <div className="table-wrap">
      <table data-testid="real-orders">
        <thead>
          <tr>
            <th>Time</th><th>Order</th><th>Symbol</th><th>Side</th><th>Type</th><th>Qty</th><th>Limit</th>
            <th>Executed</th><th>Avg price</th><th>Status</th><th>Reason</th><th><span className="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {orders.map((o) => (
            <tr key={o.order_id} data-testid={`real-order-${o.order_id}`} data-status={o.status}>
              <td>{formatTime(o.created_at_ms)}</td>
              <td><code title={o.order_id}>{o.order_id.slice(0, 10)}…</code></td>
              <td>{o.terms.symbol}</td>
              <td className={o.terms.side === 'BUY' ? 'long' : 'short'}>{o.terms.side}</td>
              <td>{o.terms.order_type}{o.terms.reduce_only ? ' · reduce only' : ''}</td>
              <td>{o.terms.close_position ? 'whole position' : o.terms.quantity}</td>
              <td>{o.terms.price ?? (o.terms.trigger_price != null ? `trigger ${o.terms.trigger_price}` : '—')}</td>
              <td data-testid="executed-qty">{o.executed_qty}</td>
              <td data-testid="avg-price">{o.avg_price ? formatPrice(o.avg_price) : '—'}</td>
              <td><span className={`pill status-${statusTone(o.status)}`} data-testid="status">{o.status}</span></td>
              <td className="wrap" data-testid="reason">{o.reason || '—'}</td>
              <td>
                <div className="button-row tight">
                  {o.status === AWAITING ? (
                    <button className="small" disabled={busy} onClick={() => onReview(o)} aria-label={`Review order ${o.order_id}`}>
                      Review
                    </button>
                  ) : null}
                  {isOpen(o.status) ? (
                    <button className="small" disabled={busy} onClick={() => onCancel(o)} aria-label={`Cancel order ${o.order_id}`}>
                      Cancel
                    </button>
                  ) : null}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RealTrading() {
  const orders = useLoad(() => call(() => http.GET('/api/real-trading/orders', { params: { query: { limit: 50 } } })));
  const listing = useLoad(() => call(() => http.GET('/api/market/symbols', { params: { query: { market: 'futures', quote_asset: 'USDT' } } })));
  const [confirming, setConfirming] = useState<Confirming | null>(null);
  const [note, setNote] = useState<{ text: string; failed: boolean } | null>(null);
  const table = useAction();
  const { state } = useLive();

  useLiveEvents(['OrderUpdate'], (e) => {
    setConfirming((c) => (c ? { ...c, order: withUpdate(c.order, e.data) } : c));
    orders.reload();
  });
  // Without the live connection the table would stand still: poll until it is back.
  useInterval(orders.reload, state === 'open' ? null : 5000);

  const decimals = useMemo(() => Object.fromEntries((listing.data ?? []).map((f) => [f.symbol, f.price_decimals])), [listing.data]);
  const symbols = useMemo(() => (listing.data ?? []).map((f) => f.symbol), [listing.data]);

  const tellAll = (orders: RealOrder[], none: string) => setNote(orders.length
    ? { text: orders.map(outcomeText).join(' '), failed: orders.some((o) => statusTone(o.status) === 'rejected') }
    : { text: none, failed: false });
  const tell = (order: RealOrder) => tellAll([order], '');
  const requested = (made: Requested, offset: number) => {
    tell(made.order);
    if (made.order.status === AWAITING && made.confirmation_token) {
      setConfirming({ order: made.order, token: made.confirmation_token, offset });
    }
    orders.reload();
  };
  const finished = (order: RealOrder) => {
    setConfirming(null);
    tell(order);
    orders.reload();
  };
  const closesSent = (sent: RealOrder[]) => {
    tellAll(sent, 'There was no open position to close.');
    orders.reload();
  };
  // A stop moved away from the price waits for the same 2-step confirmation as an order that opens risk.
  const protectionSet = (answer: ProtectionOut, offset: number) => {
    const parts = [answer.stop_loss, answer.take_profit].filter((p): p is Requested => p != null);
    tellAll(parts.map((p) => p.order), 'Nothing was changed.');
    const awaiting = parts.find((p) => p.order.status === AWAITING && p.confirmation_token);
    if (awaiting?.confirmation_token) setConfirming({ order: awaiting.order, token: awaiting.confirmation_token, offset });
    orders.reload();
  };
  // A fresh secret for this channel: the one shown when it was requested is gone with a reload.
  const review = (order: RealOrder) => void table.run(async () => {
    const path = { params: { path: { order_id: order.order_id } } };
    const { requested: made, offset } = await withOffset(() => call(() => http.POST('/api/real-trading/orders/{order_id}/confirmation-token', path)));
    requested(made, offset);
  });
  const cancel = (order: RealOrder) => void table.run(async () => {
    const path = { params: { path: { order_id: order.order_id } } };
    finished(await call(() => http.POST('/api/real-trading/orders/{order_id}/cancel', { ...path, body: { reason: 'cancelled from the orders table' } })));
  });

  return (
    <div className="grid">
      <div className="wide">
        <RealMoneyBanner>orders go to the exchange with your saved API key, unlike paper trading</RealMoneyBanner>
        {note ? <p className={note.failed ? 'error' : 'ok'} role="status" data-testid="real-note">{note.text}</p> : null}
      </div>
      <RealSession />
      <RealAccount decimals={decimals} onCloses={closesSent} onProtection={protectionSet} />
      <OrderFormCard symbols={symbols} onRequested={requested} />
      <Card title="Real orders" wide>
        <p className="muted">Open and recent orders, newest first, updated live. An order that opens risk is sent only once
          you confirm it in time; Cancel before then sends nothing.</p>
        <ErrorNote message={orders.error ?? table.error} />
        <OrdersTable orders={orders.data ?? []} onReview={review} onCancel={cancel} busy={table.busy} />
      </Card>
      {confirming ? (
        <RealOrderDialog key={confirming.order.order_id} order={confirming.order} token={confirming.token}
          offset={confirming.offset} priceDecimals={decimals[confirming.order.terms.symbol]}
          onClose={() => setConfirming(null)} onDone={finished} />
      ) : null}
    </div>
  );
}
