// Figures the overview derives from closed trades when the session's running metrics lack them.

export interface ClosedLike {
  exit_time: number;
  net_pnl: number;
}

export interface EquityPoint {
  time: number; // ms
  value: number;
}

export function winRate(trades: readonly ClosedLike[]): number | null {
  if (!trades.length) return null;
  return trades.filter((t) => t.net_pnl > 0).length / trades.length;
}

/** Realised equity after each close, oldest first, starting from ``start``. */
export function equityCurve(start: number, trades: readonly ClosedLike[]): EquityPoint[] {
  const sorted = [...trades].sort((a, b) => a.exit_time - b.exit_time);
  let equity = start;
  const points: EquityPoint[] = [];
  for (const t of sorted) {
    equity += t.net_pnl;
    points.push({ time: t.exit_time, value: equity });
  }
  return points;
}

/** The largest peak-to-trough fall, as a fraction of the peak (0.1 = 10 %). */
export function maxDrawdown(start: number, points: readonly EquityPoint[]): number {
  let peak = start;
  let worst = 0;
  for (const p of points) {
    peak = Math.max(peak, p.value);
    if (peak > 0) worst = Math.max(worst, (peak - p.value) / peak);
  }
  return worst;
}

/** Net PnL of trades closed on the UTC market day of ``now``. */
export function pnlOnDay(trades: readonly ClosedLike[], now: number): number {
  const day = Math.floor(now / 86_400_000);
  return trades.filter((t) => Math.floor(t.exit_time / 86_400_000) === day).reduce((s, t) => s + t.net_pnl, 0);
}

/** Unrealised PnL of a position at ``price`` (quantity in base units). */
export function unrealised(side: string, quantity: number, entry: number, price: number): number {
  return (side === 'short' ? entry - price : price - entry) * quantity;
}

export interface LivePnl {
  pnl: number;
  pct: number | null; // of the margin, 0.1 = 10 %; null without a margin
}

/** A position's unrealised PnL at ``price``, and its share of the margin put up for it. */
export function livePnl(
  position: { side: string; quantity: number; entry_price: number; margin?: number | null },
  price: number,
): LivePnl | null {
  const { side, quantity, entry_price: entry, margin } = position;
  if (![quantity, entry, price].every(Number.isFinite)) return null;
  const pnl = unrealised(side, quantity, entry, price);
  return { pnl, pct: margin != null && Number.isFinite(margin) && margin > 0 ? pnl / margin : null };
}

export interface Quote {
  price: number;
  time: number; // ms, market time
}

/** The quotes after one arrives: a quote older than the one held never replaces it. */
export function withQuote(quotes: Readonly<Record<string, Quote>>, symbol: string, next: Quote): Record<string, Quote> {
  const held = quotes[symbol];
  if (held && held.time > next.time) return quotes as Record<string, Quote>;
  return { ...quotes, [symbol]: next };
}
