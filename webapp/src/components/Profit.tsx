// Realised profit of the current account by pair, day, week or month (freqtrade's /daily, /weekly,
// /monthly and per-pair tables), from its closed trades.
import { useMemo, useState } from 'react';
import { profitBy, type ProfitGrouping, type ProfitTrade } from '../lib/profit';
import { Card, Pnl } from './ui';

const GROUPINGS: [ProfitGrouping, string][] = [['pair', 'Pair'], ['day', 'Day'], ['week', 'Week'], ['month', 'Month']];

export function ProfitCard({ trades, capped }: { trades: readonly ProfitTrade[]; capped: boolean }) {
  const [grouping, setGrouping] = useState<ProfitGrouping>('pair');
  const rows = useMemo(() => profitBy(trades, grouping), [trades, grouping]);
  const first = GROUPINGS.find(([g]) => g === grouping)![1];
  return (
    <Card title="Profit">
      <div className="segmented" role="group" aria-label="Group profit by">
        {GROUPINGS.map(([g, label]) => (
          <button key={g} className="small" aria-pressed={g === grouping} onClick={() => setGrouping(g)}>{label}</button>
        ))}
      </div>
      <p className="muted">
        Realised net PnL (after fees and funding) of this account's closed trades{capped ? ', the newest 10,000' : ''};
        periods are UTC{grouping === 'week' ? ', weeks start on Monday' : ''}.
      </p>
      {rows.length === 0 ? (
        <p className="muted" data-testid="no-profit">No closed trades yet.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="profit-table" data-grouping={grouping}>
            <thead><tr><th>{first}</th><th>Trades</th><th>Wins</th><th>Net PnL</th></tr></thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.key} data-testid="profit-row" data-key={r.key} data-trades={r.trades} data-value={r.net_pnl}>
                  <td>{r.label}</td><td>{r.trades}</td><td>{r.wins}</td><td><Pnl value={r.net_pnl} digits={6} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
