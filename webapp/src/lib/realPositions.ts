// The real futures account on the Real trading page, apart from React: a position's side and size from its
// signed quantity, its current stop loss and take profit (Durabot's protective orders resting on the
// exchange), the stop loss / take profit form's checks, and what the reconciliation report says.
import type { Schemas } from '../api/client';
import type { Checked } from './hooks';
import type { RealOrder } from './realOrders';

export type RealPosition = Schemas['PositionOut'];
export type ProtectionIn = Schemas['ProtectionIn'];
export type Reconciliation = Schemas['ReconciliationOut'];

export const STOP = 'STOP_MARKET';
export const TAKE = 'TAKE_PROFIT_MARKET';

/** Long for a positive quantity, short for a negative one (one-way mode: the sign is the side). */
export function positionSide(positionAmt: number): 'long' | 'short' {
  return positionAmt < 0 ? 'short' : 'long';
}

/** The position's size, whatever its side. */
export function positionSize(positionAmt: number): number {
  return Math.abs(positionAmt);
}

export interface Protection {
  stopLoss: RealOrder | null;
  takeProfit: RealOrder | null;
}

/** The trigger price of a protective order (its terms carry it as text), or null. */
export function triggerOf(order: RealOrder | null | undefined): number | null {
  const text = order?.terms.trigger_price;
  if (text == null || text.trim() === '') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** The symbol's stop loss and take profit: its OPEN STOP_MARKET and TAKE_PROFIT_MARKET orders, the newest
 * of each kind (while a moved stop replaces the old one, both rest on the exchange for a moment). */
export function protectionOf(orders: readonly RealOrder[], symbol: string): Protection {
  const newest = (orderType: string): RealOrder | null => {
    let found: RealOrder | null = null;
    for (const o of orders) {
      if (o.status !== 'OPEN' || o.terms.symbol !== symbol || o.terms.order_type !== orderType) continue;
      if (!found || o.created_at_ms > found.created_at_ms) found = o;
    }
    return found;
  };
  return { stopLoss: newest(STOP), takeProfit: newest(TAKE) };
}

export interface ProtectionForm {
  stopLoss: string;
  takeProfit: string;
}

export type ProtectionCheck = Checked<ProtectionIn, keyof ProtectionForm>;

/** The request body of a position's stop loss / take profit form, or the wrong field and why: a stop lies
 * on the losing side of the mark price (below it for a long, above for a short), a take profit on the
 * winning side. An empty field leaves that order as it is; the server checks again against its own mark. */
export function protectionBody(form: ProtectionForm, position: Pick<RealPosition, 'position_amt' | 'mark_price'>): ProtectionCheck {
  const long = positionSide(position.position_amt) === 'long';
  const mark = position.mark_price;
  const body: ProtectionIn = {};
  const fields = [
    ['stopLoss', 'stop loss', long ? 'below' : 'above'],
    ['takeProfit', 'take profit', long ? 'above' : 'below'],
  ] as const;
  for (const [field, name, side] of fields) {
    const text = form[field].trim();
    if (text === '') continue;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) return { field, message: `the ${name} must be a price above 0` };
    if (side === 'below' ? value >= mark : value <= mark) {
      return { field, message: `the ${name} of a ${long ? 'long' : 'short'} lies ${side} the mark price ${mark}` };
    }
    body[field === 'stopLoss' ? 'stop_loss' : 'take_profit'] = value;
  }
  if (body.stop_loss == null && body.take_profit == null) return { field: null, message: 'give a stop loss, a take profit or both' };
  return { body };
}

const KIND_LABELS: Record<string, string> = {
  position_mismatch: 'Position differs', unknown_position: 'Unknown position', missing_position: 'Missing position',
  unknown_order: 'Unknown order', missing_order: 'Missing order', unknown_algo_order: 'Unknown conditional order',
  missing_algo_order: 'Missing conditional order', hedge_mode: 'Hedge mode', margin_type: 'Margin type', leverage: 'Leverage',
};

export interface DifferenceLine {
  kind: string;
  label: string;
  /** The server's sentence, which names the symbol and both sides' figures. */
  detail: string;
}

/** Each difference of a reconciliation report under a readable name (an unknown kind: its words). */
export function differenceLines(report: Reconciliation): DifferenceLine[] {
  return report.differences.map((d) => ({
    kind: d.kind,
    label: KIND_LABELS[d.kind] ?? d.kind.replace(/_/g, ' '),
    detail: d.detail,
  }));
}
