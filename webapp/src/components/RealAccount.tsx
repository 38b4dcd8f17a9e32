// The real futures account on the Real trading page, as the exchange reports it: the wallet, the open
// positions with their stop loss and take profit (Durabot's protective orders resting on the exchange), and
// whether Durabot's record is in step with the exchange. Closing a position, or all of them, lowers risk:
// one plain confirmation, then a reduce-only MARKET order goes out at once. Setting a stop or tightening it
// acts at once too; a stop moved away from the price comes back awaiting the 2-step confirmation, which the
// page opens. Without a saved API key there is no account to read: the page says so and asks nothing.
import { useState } from 'react';
import { call, http, type Schemas } from '../api/client';
import { formatPrice, formatTime } from '../lib/format';
import { useAction, useCheckedSubmit, useInterval, useLoad } from '../lib/hooks';
import { serverOffset, type RealOrder } from '../lib/realOrders';
import {
  differenceLines, positionSide, positionSize, protectionBody, protectionOf, triggerOf, type Protection, type ProtectionForm,
  type RealPosition,
} from '../lib/realPositions';
import { Link } from '../lib/router';
import { ConfirmButton, type ConfirmText } from './Confirm';
import { useLiveEvents } from './live';
import { Card, ErrorNote, Pnl, Stat } from './ui';

type ProtectionOut = Schemas['ProtectionOut'];
type Decimals = Readonly<Record<string, number | null | undefined>>;

export interface AccountHandlers {
  /** Close orders were sent (one per position; none when there was nothing to close). */
  onCloses: (orders: RealOrder[]) => void;
  /** A stop loss / take profit answer, with the server's clock offset it showed. */
  onProtection: (answer: ProtectionOut, offset: number) => void;
}

const EMPTY_FORM: ProtectionForm = { stopLoss: '', takeProfit: '' };

function closeText(p: RealPosition, price: (v: number | null | undefined) => string): ConfirmText {
  const side = positionSide(p.position_amt);
  return {
    title: `Close the ${p.symbol} ${side}?`,
    action: `Close ${p.symbol}`,
    body: (
      <p>
        Sends a reduce-only MARKET order to the exchange at once: {side === 'long' ? 'sells' : 'buys back'} {positionSize(p.position_amt)}{' '}
        {p.symbol}, the whole {side} entered at {price(p.entry_price)}, at the market price (mark {price(p.mark_price)}). Its
        unrealized PnL becomes realised, less the fee. This cannot be undone.
      </p>
    ),
  };
}

const FLATTEN_TEXT: ConfirmText = {
  title: 'Close every position?',
  action: 'Flatten all positions',
  body: <p>Sends one reduce-only MARKET order per open position to the exchange at once, at the market price. This cannot be undone.</p>,
};

function ProtectionEditor({ position, protection, price, onSaved }: {
  position: RealPosition;
  protection: Protection;
  price: (v: number | null | undefined) => string;
  onSaved: (answer: ProtectionOut, offset: number) => void;
}) {
  const [form, setForm] = useState<ProtectionForm>(EMPTY_FORM);
  const symbol = position.symbol;
  const { busy, error, invalid, submit } = useCheckedSubmit(() => protectionBody(form, position), async (body) => {
    const sent = Date.now();
    const answer = await call(() => http.PUT('/api/real-trading/positions/{symbol}/sltp', { params: { path: { symbol } }, body }));
    const stamp = (answer.stop_loss ?? answer.take_profit)?.order.updated_at_ms ?? Number.NaN;
    setForm(EMPTY_FORM);
    onSaved(answer, serverOffset(stamp, sent, Date.now()));
  });

  const field = (key: keyof ProtectionForm, label: string, current: RealOrder | null) => (
    <label>
      {label}
      <input value={form[key]} inputMode="decimal" autoComplete="off" aria-invalid={invalid === key}
        placeholder={current ? price(triggerOf(current)) : 'none'}
        onChange={(e) => setForm((f) => ({ ...f, [key]: e.target.value }))} />
    </label>
  );
  return (
    <form className="inline-form" aria-label={`Stop loss and take profit of ${symbol}`} onSubmit={submit} noValidate>
      {field('stopLoss', 'Stop loss', protection.stopLoss)}
      {field('takeProfit', 'Take profit', protection.takeProfit)}
      <button type="submit" className="small" disabled={busy}>Save</button>
      <ErrorNote message={error} />
    </form>
  );
}

function ProtectionCell({ order, price, testId }: { order: RealOrder | null; price: (v: number | null | undefined) => string; testId: string }) {
  return (
    <td data-testid={testId} data-order={order?.order_id ?? ''} data-value={triggerOf(order) ?? ''}>
      {order ? price(triggerOf(order)) : '—'}
    </td>
  );
}

const COLUMNS = ['Symbol', 'Side', 'Size', 'Entry', 'Mark', 'Unrealized PnL', 'Liquidation', 'Stop loss', 'Take profit'];

function PositionsTable({ positions, orders, decimals, busy, onClose, onSaved }: {
  positions: RealPosition[];
  orders: RealOrder[];
  decimals: Decimals;
  busy: boolean;
  onClose: (symbol: string) => void;
  onSaved: AccountHandlers['onProtection'];
}) {
  if (!positions.length) return <p className="muted" data-testid="no-real-positions">No open positions.</p>;
  return (
    <div className="table-wrap">
      <table data-testid="real-positions">
        <thead>
          <tr>{COLUMNS.map((c) => <th key={c}>{c}</th>)}<th><span className="visually-hidden">Actions</span></th></tr>
        </thead>
        {positions.map((p) => {
          const price = (v: number | null | undefined) => formatPrice(v, decimals[p.symbol]);
          const side = positionSide(p.position_amt);
          const protection = protectionOf(orders, p.symbol);
          return (
            // One body per position: its figures, then its stop loss / take profit editor.
            <tbody key={p.symbol} data-testid={`real-position-${p.symbol}`} data-side={side} data-size={positionSize(p.position_amt)}>
              <tr>
                <td>{p.symbol}</td>
                <td className={side} data-testid="side">{side}</td>
                <td data-testid="size">{positionSize(p.position_amt)}</td>
                <td data-testid="entry">{price(p.entry_price)}</td>
                <td data-testid="mark" data-value={p.mark_price}>{price(p.mark_price)}</td>
                <td data-testid="unrealized" data-value={p.unrealized_profit}><Pnl value={p.unrealized_profit} /></td>
                <td data-testid="liquidation">{p.liquidation_price > 0 ? price(p.liquidation_price) : '—'}</td>
                <ProtectionCell order={protection.stopLoss} price={price} testId="stop-loss" />
                <ProtectionCell order={protection.takeProfit} price={price} testId="take-profit" />
                <td>
                  <ConfirmButton className="danger small" disabled={busy} label={`Close ${p.symbol} position`}
                    confirm={() => closeText(p, price)} onConfirm={() => onClose(p.symbol)}>
                    Close
                  </ConfirmButton>
                </td>
              </tr>
              <tr className="editor-row">
                <td colSpan={COLUMNS.length + 1}>
                  <ProtectionEditor position={p} protection={protection} price={price} onSaved={onSaved} />
                </td>
              </tr>
            </tbody>
          );
        })}
      </table>
    </div>
  );
}

function BalanceLine({ balance }: { balance: Schemas['BalanceOut'] | undefined }) {
  if (!balance) return null;
  return (
    <div className="stats" data-testid="real-balance">
      <Stat label="Wallet" testId="balance-wallet" value={balance.total_wallet_balance}>{formatPrice(balance.total_wallet_balance, 2)}</Stat>
      <Stat label="Available" testId="balance-available" value={balance.available_balance}>{formatPrice(balance.available_balance, 2)}</Stat>
      <Stat label="Unrealized PnL" testId="balance-unrealized" value={balance.total_unrealized_profit}>
        <Pnl value={balance.total_unrealized_profit} />
      </Stat>
    </div>
  );
}

function ReconciliationCard() {
  const report = useLoad(() => call(() => http.GET('/api/real-trading/reconciliation')));
  const r = report.data;
  return (
    <Card title="Reconciliation" actions={
      <button className="small" disabled={report.loading} onClick={report.reload}>Check again</button>
    }>
      <p className="muted">Durabot's record of your real orders and positions against what the exchange reports.</p>
      <ErrorNote message={report.error} />
      {r ? (
        <div data-testid="reconciliation" data-ok={r.ok} data-checked={r.checked_at_ms}>
          {r.ok ? (
            <p className="ok">In step with the exchange (checked {formatTime(r.checked_at_ms)}).</p>
          ) : (
            <>
              <p className="error">
                {r.differences.length} difference{r.differences.length === 1 ? '' : 's'} with the exchange (checked{' '}
                {formatTime(r.checked_at_ms)}):
              </p>
              <ul className="list">
                {differenceLines(r).map((d, i) => (
                  <li key={i} data-kind={d.kind}><strong>{d.label}:</strong> {d.detail}</li>
                ))}
              </ul>
            </>
          )}
        </div>
      ) : null}
    </Card>
  );
}

function AccountCards({ decimals, onCloses, onProtection }: AccountHandlers & { decimals: Decimals }) {
  const positions = useLoad(() => call(() => http.GET('/api/real-trading/positions')));
  const balance = useLoad(() => call(() => http.GET('/api/real-trading/balance')));
  // Every live order, not only the recent ones the orders table shows: a stop may be older than those.
  const live = useLoad(() => call(() => http.GET('/api/real-trading/orders', { params: { query: { open_only: true, limit: 500 } } })));
  const action = useAction();
  const refresh = () => {
    positions.reload();
    balance.reload();
    live.reload();
  };
  useLiveEvents(['OrderUpdate'], refresh);
  // Mark prices and PnL move without an order event.
  useInterval(refresh, 5000);

  const closed = (orders: RealOrder[]) => {
    onCloses(orders);
    refresh();
  };
  const close = (symbol: string) => void action.run(async () => {
    closed([await call(() => http.POST('/api/real-trading/positions/{symbol}/close', { params: { path: { symbol } } }))]);
  });
  const flatten = () => void action.run(async () => {
    closed((await call(() => http.POST('/api/real-trading/flatten'))).orders);
  });
  const saved = (answer: ProtectionOut, offset: number) => {
    onProtection(answer, offset);
    refresh();
  };

  const open = positions.data ?? [];
  return (
    <>
      <Card title="Futures account" wide actions={
        <ConfirmButton className="danger small" disabled={action.busy || !open.length} confirm={() => FLATTEN_TEXT} onConfirm={flatten}>
          Flatten all
        </ConfirmButton>
      }>
        <ErrorNote message={balance.error} />
        <BalanceLine balance={balance.data} />
        <ErrorNote message={positions.error ?? live.error ?? action.error} />
        <PositionsTable positions={open} orders={live.data ?? []} decimals={decimals} busy={action.busy} onClose={close}
          onSaved={saved} />
      </Card>
      <ReconciliationCard />
    </>
  );
}

export function RealAccount(props: AccountHandlers & { decimals: Decimals }) {
  const keys = useLoad(() => call(() => http.GET('/api/settings/api-keys')));
  if (keys.error) return <Card title="Futures account" wide><ErrorNote message={keys.error} /></Card>;
  if (!keys.data) return null;
  if (!keys.data.length) {
    return (
      <Card title="Futures account" wide>
        <p className="muted" data-testid="no-api-key">
          No exchange API key saved: add one in <Link href="/settings">Settings</Link> to see your futures wallet, positions and
          reconciliation here.
        </p>
      </Card>
    );
  }
  return <AccountCards {...props} />;
}
