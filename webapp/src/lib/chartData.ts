// lightweight-charts needs strictly increasing times in seconds; API times are ms and can repeat.

export interface TimeValue {
  time: number; // seconds
  value: number;
}

/** Points in seconds, ascending, one per second (the last value wins). */
export function toLine(points: readonly { time: number; value: number }[]): TimeValue[] {
  const bySecond = new Map<number, number>();
  for (const p of [...points].sort((a, b) => a.time - b.time)) {
    if (Number.isFinite(p.value)) bySecond.set(Math.floor(p.time / 1000), p.value);
  }
  return [...bySecond.entries()].map(([time, value]) => ({ time, value }));
}

/** The open time (s) of the bar holding ``ms``, so a marker lands on a bar the series has. */
export function snapToBar(barTimes: readonly number[], ms: number): number | null {
  const t = Math.floor(ms / 1000);
  let lo = 0;
  let hi = barTimes.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (barTimes[mid] <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found >= 0 ? barTimes[found] : null;
}

export interface Bar {
  time: number; // seconds
  value: number;
  color: string;
}

/** One volume bar per candle, coloured as the candle (close ≥ open is up). */
export function volumeBars(candles: readonly { open_time: number; open: number; close: number; volume: number }[],
  up: string, down: string): Bar[] {
  return candles.map((k) => ({ time: Math.floor(k.open_time / 1000), value: k.volume, color: k.close >= k.open ? up : down }));
}

/** A histogram (MACD's) per candle where it is defined (warm-up values are null), coloured by sign. */
export function histogramBars(candles: readonly { open_time: number }[], values: readonly (number | null)[],
  up: string, down: string): Bar[] {
  const bars: Bar[] = [];
  candles.forEach((k, i) => {
    const v = values[i];
    if (v != null && Number.isFinite(v)) bars.push({ time: Math.floor(k.open_time / 1000), value: v, color: v >= 0 ? up : down });
  });
  return bars;
}
