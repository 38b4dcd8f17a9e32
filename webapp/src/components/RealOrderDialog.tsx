// The second step of a real order: what will be sent and what it costs (the server's summary and each risk
// check's verdict), the time left to confirm, and Confirm (the one-time secret and the digest of the terms
// shown here) or Cancel order. Above the user's notional threshold the server asks for a fresh two-factor
// code: api/client.ts opens the step-up dialog over this one and retries the confirmation once.
// Escape only closes the dialog: the order keeps waiting (Review in the orders table opens it again).
import { useEffect, useId, useRef, useState } from 'react';
import { call, http } from '../api/client';
import { useAction, useInterval } from '../lib/hooks';
import {
  AWAITING, confirmCountdown, confirmExpired, orderWhat, riskCheckLines, summaryLines, type RealOrder,
} from '../lib/realOrders';
import { ErrorNote } from './ui';

export function RealMoneyBanner({ children }: { children?: string }) {
  return (
    <p className="real-banner" data-testid="real-banner">
      <strong>REAL MONEY</strong> — {children ?? 'orders go to the exchange'}
    </p>
  );
}

export function RealOrderDialog({ order, token, offset, priceDecimals, onClose, onDone }: {
  order: RealOrder;
  /** The one-time confirmation secret the API showed for this order. */
  token: string;
  /** Server clock minus browser clock (ms): the deadline is the server's. */
  offset: number;
  priceDecimals?: number | null;
  onClose: () => void;
  /** Confirmed or cancelled: the order as the server answered. */
  onDone: (order: RealOrder) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const id = useId();
  const [now, setNow] = useState(() => Date.now() + offset);
  const { busy, error, run } = useAction();
  useInterval(() => setNow(Date.now() + offset), 250);
  useEffect(() => {
    const el = dialog.current;
    if (!el) return;
    el.showModal();
    return () => el.close();
  }, []);

  const expired = confirmExpired(order, now);
  const awaiting = order.status === AWAITING && !expired;
  const path = { params: { path: { order_id: order.order_id } } };

  const act = (send: () => Promise<RealOrder>) => run(async () => onDone(await send()));
  const confirm = () => void act(() => call(() => http.POST('/api/real-trading/orders/{order_id}/confirm', {
    ...path, body: { token, terms_digest: order.terms_digest },
  })));
  const cancel = () => void act(() => call(() => http.POST('/api/real-trading/orders/{order_id}/cancel', {
    ...path, body: { reason: 'cancelled in the confirmation dialog' },
  })));

  return (
    <dialog ref={dialog} className="confirm real-order" aria-labelledby={`${id}-title`} data-testid="real-order-dialog"
      data-order={order.order_id} data-status={expired && order.status === AWAITING ? 'EXPIRED' : order.status}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}>
      <h2 id={`${id}-title`}>Confirm REAL order: {orderWhat(order.terms)}</h2>
      <RealMoneyBanner>confirming sends this order to the exchange with your API key</RealMoneyBanner>
      <dl className="metrics order-summary" data-testid="order-summary">
        {summaryLines(order, priceDecimals).map((line) => (
          <div key={line.key} data-testid={`summary-${line.key}`}>
            <dt>{line.label}</dt>
            <dd>{line.text}</dd>
          </div>
        ))}
      </dl>
      <h3>Risk checks</h3>
      <ul className="list risk-checks" data-testid="risk-checks">
        {riskCheckLines(order).map((c) => (
          <li key={c.check} data-check={c.check} data-passed={c.passed} className={c.passed ? 'ok' : 'error'}>
            <strong>{c.label}:</strong> {c.text}
          </li>
        ))}
      </ul>
      {order.status === AWAITING && !expired ? (
        <p className="countdown confirm-countdown" role="timer" data-testid="confirm-countdown"
          data-until={order.confirm_by_ms ?? ''}>{confirmCountdown(order, now)}</p>
      ) : (
        <p className="error" role="alert" data-testid="confirm-closed">
          {expired
            ? 'This order expired: it was not confirmed in time, and nothing was sent.'
            : `This order is ${order.status}${order.reason ? `: ${order.reason}` : ''}.`}
        </p>
      )}
      <ErrorNote message={error} />
      <div className="confirm-actions">
        {awaiting ? (
          <>
            <button autoFocus disabled={busy} onClick={cancel}>Cancel order</button>
            <button className="danger" disabled={busy} onClick={confirm}>Confirm</button>
          </>
        ) : (
          <>
            <button autoFocus onClick={onClose}>Close</button>
            <button className="danger" disabled>Confirm</button>
          </>
        )}
      </div>
    </dialog>
  );
}
