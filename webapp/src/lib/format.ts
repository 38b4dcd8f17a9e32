// Number and time formatting shared by every page, so PnL reads the same everywhere.

export type Tone = 'up' | 'down' | 'flat';

export function tone(value: number | null | undefined): Tone {
  if (value == null || !Number.isFinite(value) || value === 0) return 'flat';
  return value > 0 ? 'up' : 'down';
}

export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value == null || !Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A price with the symbol's decimals (from its tick size) when known: 0.0994700 at a tick of 1e-7,
 *  42,000.50 at 0.01. Without them (the exchange's filters still loading, or a symbol it does not
 *  list for this account), enough significant digits for small quotes such as ETHBTC (0.09…). */
export function formatPrice(value: number | null | undefined, decimals?: number | null): string {
  if (value == null || !Number.isFinite(value)) return '—';
  if (decimals != null && Number.isInteger(decimals) && decimals >= 0 && decimals <= 20) return formatNumber(value, decimals);
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 2 : abs >= 1 ? 4 : abs === 0 ? 2 : Math.min(8, 4 - Math.floor(Math.log10(abs)));
  return formatNumber(value, digits);
}

/** Signed PnL, so a gain is never mistaken for a balance: "+12.30", "−4.00", "0.00". */
export function formatPnl(value: number | null | undefined, digits = 2): string {
  if (value == null || !Number.isFinite(value)) return '—';
  const text = formatNumber(Math.abs(value), digits);
  if (Number(text.replace(/,/g, '')) === 0) return formatNumber(0, digits);
  return (value > 0 ? '+' : '−') + text;
}

/** A ratio as a percentage: 0.125 -> "12.5%". */
export function formatPct(ratio: number | null | undefined, digits = 1): string {
  if (ratio == null || !Number.isFinite(ratio)) return '—';
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** Market time (ms, UTC) as "2018-01-03 14:05 UTC". */
export function formatTime(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms <= 0) return '—';
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** A UTC day (ms) as "2018-01-03". */
export function formatDate(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms <= 0) return '—';
  return new Date(ms).toISOString().slice(0, 10);
}

// The indicators a trader reads first, in reading order; the rest stay in the API's record.
const INDICATOR_LABELS: [string, string, 'price' | 'ratio' | 'level'][] = [
  ['rsi', 'RSI', 'level'], ['macd_histogram', 'MACD hist', 'price'], ['bb_percent_b', '%B', 'ratio'],
  ['stoch_k', 'Stoch K', 'level'], ['stoch_d', 'D', 'level'], ['volume_ratio', 'Vol ×', 'ratio'], ['atr', 'ATR', 'price'],
];

/** "RSI 34.6 · MACD hist −0.00012 · %B 0.12 · …"; undefined values (warm-up) are left out. */
export function formatIndicators(values: Record<string, number | null | undefined> | null | undefined): string {
  if (!values) return '';
  const parts: string[] = [];
  for (const [key, label, kind] of INDICATOR_LABELS) {
    const v = values[key];
    if (v == null || !Number.isFinite(v)) continue;
    const text = kind === 'level' ? v.toFixed(1) : kind === 'ratio' ? v.toFixed(2) : Number(v.toPrecision(3)).toString();
    parts.push(`${label} ${text.replace('-', '−')}`);
  }
  return parts.join(' · ');
}
