// Realised profit of closed trades grouped by pair or by UTC day, ISO week (Monday first) or month,
// as freqtrade's daily/weekly/monthly tables: a period holds the trades that closed in it.

export type ProfitGrouping = 'pair' | 'day' | 'week' | 'month';

export interface ProfitTrade {
  symbol: string;
  exit_time: number; // ms, market time
  net_pnl: number;
}

export interface ProfitRow {
  key: string; // the pair, "2018-01-15", "2018-W03" or "2018-01"
  label: string;
  trades: number;
  wins: number;
  net_pnl: number;
}

const DAY_MS = 86_400_000;

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The Monday 00:00 UTC starting the week of ``ms``. */
export function weekStart(ms: number): number {
  const day = Math.floor(ms / DAY_MS) * DAY_MS;
  const sinceMonday = (new Date(day).getUTCDay() + 6) % 7;
  return day - sinceMonday * DAY_MS;
}

/** ISO 8601 week of ``ms`` (UTC): "2018-W03"; the week belongs to the year of its Thursday. */
export function isoWeek(ms: number): string {
  const monday = weekStart(ms);
  const year = new Date(monday + 3 * DAY_MS).getUTCFullYear();
  const firstMonday = weekStart(Date.UTC(year, 0, 4));
  const week = Math.round((monday - firstMonday) / (7 * DAY_MS)) + 1;
  return `${year}-W${String(week).padStart(2, '0')}`;
}

export function periodOf(ms: number, grouping: Exclude<ProfitGrouping, 'pair'>): { key: string; label: string } {
  if (grouping === 'day') return { key: isoDay(ms), label: isoDay(ms) };
  if (grouping === 'month') return { key: isoDay(ms).slice(0, 7), label: isoDay(ms).slice(0, 7) };
  const key = isoWeek(ms);
  return { key, label: `${key} (from ${isoDay(weekStart(ms))})` };
}

/** One row per pair (most profitable first) or per period (newest first) that has closed trades. */
export function profitBy(trades: readonly ProfitTrade[], grouping: ProfitGrouping): ProfitRow[] {
  const rows = new Map<string, ProfitRow>();
  for (const t of trades) {
    if (!Number.isFinite(t.net_pnl) || !Number.isFinite(t.exit_time)) continue;
    const { key, label } = grouping === 'pair' ? { key: t.symbol, label: t.symbol } : periodOf(t.exit_time, grouping);
    const row = rows.get(key) ?? { key, label, trades: 0, wins: 0, net_pnl: 0 };
    row.trades += 1;
    row.wins += t.net_pnl > 0 ? 1 : 0;
    row.net_pnl += t.net_pnl;
    rows.set(key, row);
  }
  const all = [...rows.values()];
  return grouping === 'pair'
    ? all.sort((a, b) => b.net_pnl - a.net_pnl || a.key.localeCompare(b.key))
    : all.sort((a, b) => b.key.localeCompare(a.key));
}
