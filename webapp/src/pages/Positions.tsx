import { useMemo, useState } from 'react';
import { call, errorText, http } from '../api/client';
import { useLive, useLiveEvents } from '../components/live';
import { usePriceFormat } from '../components/symbols';
import { ConfirmButton, type ConfirmText } from '../components/Confirm';
import { TradeReview } from '../components/TradeReview';
import { Card, ErrorNote, Pnl } from '../components/ui';
import { downloadCsv, toCsv, type Column } from '../lib/csv';
import { formatNumber, formatPnl, formatTime } from '../lib/format';
import { useLoad } from '../lib/hooks';
import { livePnl } from '../lib/metrics';

type Row = Record<string, unknown>;
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export interface ClosedFilter {
  symbol: string;
  side: '' | 'long' | 'short';
  result: '' | 'win' | 'loss';
}

export function filterClosed(rows: Row[], f: ClosedFilter): Row[] {
  return rows.filter((t) => {
    if (f.symbol && t.symbol !== f.symbol) return false;
    if (f.side && t.side !== f.side) return false;
    const pnl = num(t.net_pnl) ?? 0;
    if (f.result === 'win' && !(pnl > 0)) return false;
    if (f.result === 'loss' && !(pnl <= 0)) return false;
    return true;
  });
}

export const CLOSED_COLUMNS: Column<Row>[] = [
  { header: 'id', value: (t) => t.id as number },
  { header: 'symbol', value: (t) => t.symbol as string },
  { header: 'side', value: (t) => t.side as string },
  { header: 'quantity', value: (t) => t.quantity as number },
  { header: 'entry_time', value: (t) => new Date(Number(t.entry_time)).toISOString() },
  { header: 'entry_price', value: (t) => t.entry_price as number },
  { header: 'exit_time', value: (t) => new Date(Number(t.exit_time)).toISOString() },
  { header: 'exit_price', value: (t) => t.exit_price as number },
  { header: 'fees', value: (t) => (num(t.entry_fee) ?? 0) + (num(t.exit_fee) ?? 0) },
  { header: 'net_pnl', value: (t) => t.net_pnl as number },
  { header: 'close_reason', value: (t) => t.close_reason as string },
];

/** What closing an open trade does, with the numbers the trader sees in its row. */
function closeText(p: Row, price: number | null, pnl: number | null,
  formatPrice: (value: number | null | undefined) => string): ConfirmText {
  const id = Number(p.trade_id);
  const long = p.side === 'long';
  const size = `${formatNumber(num(p.quantity), 4)} ${String(p.symbol)}`;
  return {
    title: `Close trade #${id}?`,
    action: `Close trade #${id}`,
    body: (
      <p>
        {long ? 'Sells' : 'Buys back'} {size}, the whole {String(p.side)} entered at {formatPrice(num(p.entry_price))}, at the latest
        market price{price != null ? ` (last ${formatPrice(price)})` : ''}. Its PnL
        {pnl != null ? `, ${formatPnl(pnl, 6)} now,` : ''} becomes realised, less the exit fee; its stop loss and take profit
        are dropped. This cannot be undone.
      </p>
    ),
  };
}

function OpenPositions() {
  const open = useLoad(() => call(() => http.GET('/api/paper-trading/trades/open')));
  const { prices } = useLive();
  const priceOf = usePriceFormat();
  const [error, setError] = useState<string | null>(null);
  const [closing, setClosing] = useState<number | null>(null);
  useLiveEvents(['TradeExecuted', 'PositionUpdate'], open.reload);

  const close = async (id: number) => {
    setClosing(id);
    setError(null);
    try {
      await call(() => http.POST('/api/paper-trading/trades/{trade_id}/close', { params: { path: { trade_id: id } } }));
      open.reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setClosing(null);
    }
  };

  const rows = open.data ?? [];
  return (
    <Card title="Open positions">
      <ErrorNote message={error ?? open.error} />
      {rows.length === 0 ? (
        <p className="muted" data-testid="no-open-positions">No open positions.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="open-positions">
            <thead>
              <tr>
                <th>#</th><th>Symbol</th><th>Side</th><th>Qty</th><th>Entry</th><th>Price</th><th>SL / TP</th><th>PnL</th><th>PnL %</th><th />
              </tr>
            </thead>
            <tbody>
              {rows.map((p) => {
                const id = Number(p.trade_id);
                const price = prices[String(p.symbol)] ?? null;
                const live = price != null
                  ? livePnl({ side: String(p.side), quantity: Number(p.quantity), entry_price: Number(p.entry_price), margin: num(p.margin) }, price)
                  : null;
                return (
                  <tr key={id} data-testid={`open-${id}`}>
                    <td>{id}</td>
                    <td>{String(p.symbol)}</td>
                    <td className={String(p.side)}>{String(p.side)}</td>
                    <td>{formatNumber(num(p.quantity), 4)}</td>
                    <td data-testid={`entry-${id}`}>{priceOf(p.symbol, num(p.entry_price))}</td>
                    <td data-testid={`price-${id}`} data-value={price ?? ''}>{priceOf(p.symbol, price)}</td>
                    <td>{priceOf(p.symbol, num(p.stop_loss))} / {priceOf(p.symbol, num(p.take_profit))}</td>
                    <td data-testid={`pnl-${id}`} data-value={live?.pnl ?? ''}><Pnl value={live?.pnl} digits={6} /></td>
                    <td data-testid={`pnl-pct-${id}`}>{live?.pct != null ? <Pnl value={live.pct * 100} digits={2} /> : '—'}{live?.pct != null ? '%' : ''}</td>
                    <td>
                      <ConfirmButton className="danger small" disabled={closing === id} label={`Close position ${id}`}
                        onConfirm={() => void close(id)} confirm={() => closeText(p, price, live?.pnl ?? null, (v) => priceOf(p.symbol, v))}>
                        Close
                      </ConfirmButton>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function ClosedTrades({ onReview }: { onReview: (id: number) => void }) {
  const closed = useLoad(() => call(() => http.GET('/api/paper-trading/trades/closed', { params: { query: { limit: 500 } } })));
  const priceOf = usePriceFormat();
  const [filter, setFilter] = useState<ClosedFilter>({ symbol: '', side: '', result: '' });
  useLiveEvents(['TradeExecuted'], closed.reload);
  const all = useMemo(() => (closed.data ?? []).map((r) => r.trade as Row), [closed.data]);
  const symbols = useMemo(() => [...new Set(all.map((t) => String(t.symbol)))].sort(), [all]);
  const rows = filterClosed(all, filter);

  return (
    <Card
      title="Closed trades"
      actions={
        <button disabled={!rows.length} onClick={() => downloadCsv('closed-trades.csv', toCsv(rows, CLOSED_COLUMNS))}>
          Export CSV
        </button>
      }
    >
      <div className="filters" role="group" aria-label="Filter closed trades">
        <label>
          Symbol
          <select value={filter.symbol} onChange={(e) => setFilter({ ...filter, symbol: e.target.value })}>
            <option value="">all</option>
            {symbols.map((s) => <option key={s}>{s}</option>)}
          </select>
        </label>
        <label>
          Side
          <select value={filter.side} onChange={(e) => setFilter({ ...filter, side: e.target.value as ClosedFilter['side'] })}>
            <option value="">all</option><option>long</option><option>short</option>
          </select>
        </label>
        <label>
          Result
          <select value={filter.result} onChange={(e) => setFilter({ ...filter, result: e.target.value as ClosedFilter['result'] })}>
            <option value="">all</option><option value="win">wins</option><option value="loss">losses</option>
          </select>
        </label>
      </div>
      <ErrorNote message={closed.error} />
      {rows.length === 0 ? (
        <p className="muted">No closed trades.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="closed-trades">
            <thead>
              <tr><th>#</th><th>Symbol</th><th>Side</th><th>Entry</th><th>Exit</th><th>Closed</th><th>Reason</th><th>Net PnL</th><th /></tr>
            </thead>
            <tbody>
              {rows.map((t) => (
                <tr key={String(t.id)} data-testid={`closed-${String(t.id)}`}>
                  <td>{String(t.id)}</td>
                  <td>{String(t.symbol)}</td>
                  <td className={String(t.side)}>{String(t.side)}</td>
                  <td>{priceOf(t.symbol, num(t.entry_price))}</td>
                  <td>{priceOf(t.symbol, num(t.exit_price))}</td>
                  <td>{formatTime(num(t.exit_time))}</td>
                  <td>{String(t.close_reason ?? '')}</td>
                  <td><Pnl value={num(t.net_pnl)} digits={6} /></td>
                  <td>
                    <button className="small" onClick={() => onReview(Number(t.id))} aria-label={`Review trade ${String(t.id)}`}>
                      Review
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

export function Positions() {
  const [reviewing, setReviewing] = useState<number | null>(null);
  return (
    <div className="stack">
      <OpenPositions />
      <ClosedTrades onReview={setReviewing} />
      {reviewing != null ? <TradeReview key={reviewing} tradeId={reviewing} onClose={() => setReviewing(null)} /> : null}
    </div>
  );
}
