import { useEffect, useMemo, useRef, useState } from 'react';
import {
  CandlestickSeries, HistogramSeries, LineSeries, LineStyle, createChart, createSeriesMarkers, type SeriesMarker, type UTCTimestamp,
} from 'lightweight-charts';
import { call, http } from '../api/client';
import { useLiveEvents } from '../components/live';
import { useSymbolFilters } from '../components/symbols';
import { Card, ErrorNote } from '../components/ui';
import { histogramBars, snapToBar, toLine, volumeBars } from '../lib/chartData';
import { useLoad } from '../lib/hooks';
import { PALETTES, chartOptions, useColorScheme } from '../lib/theme';

const TIMEFRAMES = ['1m', '5m', '15m', '1h', '4h', '1d'] as const;
const INDICATORS = ['bollinger', 'rsi', 'macd', 'stochastic', 'atr', 'volume'] as const;
// Bollinger bands share the price scale, and volume (bars and its average) sits along the bottom of the
// price pane as freqtrade draws it; the others each get a pane of their own, MACD with its histogram.
const GROUPS: Record<string, string[]> = {
  bollinger: ['bb_lower', 'bb_mid', 'bb_upper'], rsi: ['rsi'], macd: ['macd', 'macd_signal'],
  stochastic: ['stoch_k', 'stoch_d'], atr: ['atr'], volume: ['volume_sma'],
};
const IN_PRICE_PANE = new Set(['bollinger', 'volume']);

type Row = Record<string, unknown>;

export function Chart() {
  const status = useLoad(() => call(() => http.GET('/api/paper-trading/status')));
  const [symbol, setSymbol] = useState('');
  const [timeframe, setTimeframe] = useState<(typeof TIMEFRAMES)[number]>('5m');
  const [chosen, setChosen] = useState<string[]>(['bollinger', 'volume', 'rsi', 'macd']);
  const shown = symbol || status.data?.symbols[0] || '';
  const chart = useLoad(
    () => (shown ? call(() => http.GET('/api/chart/{symbol}/{timeframe}', {
      params: { path: { symbol: shown, timeframe }, query: { indicators: chosen.join(',') || 'rsi', limit: 300 } },
    })) : Promise.resolve(null)),
    [shown, timeframe, chosen.join(',')],
  );
  const open = useLoad(() => call(() => http.GET('/api/paper-trading/trades/open')));
  const closed = useLoad(() => call(() => http.GET('/api/paper-trading/trades/closed', { params: { query: { limit: 200 } } })));
  useLiveEvents(['ChartUpdate'], (e) => e.symbol === shown && chart.reload());
  useLiveEvents(['TradeExecuted'], () => {
    open.reload();
    closed.reload();
  });

  const box = useRef<HTMLDivElement>(null);
  const scheme = useColorScheme();
  const filters = useSymbolFilters()[shown];
  const positions = useMemo(() => (open.data ?? []).filter((p) => p.symbol === shown), [open.data, shown]);
  const trades = useMemo(() => (closed.data ?? []).map((r) => r.trade as Row).filter((t) => t.symbol === shown), [closed.data, shown]);

  useEffect(() => {
    const data = chart.data;
    if (!box.current || !data || !data.candles.length) return;
    const palette = PALETTES[scheme];
    const drawn: Record<string, string> = {};
    const c = createChart(box.current, chartOptions(scheme));
    const candles = c.addSeries(CandlestickSeries, { upColor: palette.up, downColor: palette.down, wickUpColor: palette.up, wickDownColor: palette.down, borderVisible: false });
    const bars = data.candles.map((k) => ({ time: Math.floor(k.open_time / 1000) as UTCTimestamp, open: k.open, high: k.high, low: k.low, close: k.close }));
    candles.setData(bars);
    if (filters) {
      // The price scale steps by the symbol's tick, with as many decimals.
      candles.applyOptions({ priceFormat: { type: 'price', precision: filters.price_decimals, minMove: filters.tick_size } });
      drawn.priceDecimals = String(filters.price_decimals);
    }
    const times = data.candles.map((k) => data.candles.length && Math.floor(k.open_time / 1000));
    const volumeShown = chosen.includes('volume');
    if (volumeShown) {
      // Candles keep the top of the pane, volume the bottom fifth, each on a scale of its own.
      candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
      const volume = c.addSeries(HistogramSeries, { priceScaleId: 'volume', priceFormat: { type: 'volume' }, title: 'volume',
        priceLineVisible: false, lastValueVisible: false }, 0);
      volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
      const vbars = volumeBars(data.candles, palette.up + '80', palette.down + '80');
      volume.setData(vbars.map((b) => ({ ...b, time: b.time as UTCTimestamp })));
      drawn.volumeBars = String(vbars.length);
      drawn.volumeLast = String(vbars.at(-1)?.value ?? '');
    }
    let pane = 0;
    for (const name of chosen) {
      const columns = GROUPS[name] ?? [];
      if (!IN_PRICE_PANE.has(name)) pane += 1;
      const paneOf = IN_PRICE_PANE.has(name) ? 0 : pane;
      if (name === 'macd' && data.indicators.macd_histogram) {
        const histogram = c.addSeries(HistogramSeries, { title: 'macd_histogram', priceLineVisible: false, lastValueVisible: false }, paneOf);
        const hbars = histogramBars(data.candles, data.indicators.macd_histogram, palette.up, palette.down);
        histogram.setData(hbars.map((b) => ({ ...b, time: b.time as UTCTimestamp })));
        drawn.macdHistogramBars = String(hbars.length);
        drawn.macdHistogramLast = String(hbars.at(-1)?.value ?? '');
      }
      columns.forEach((col, i) => {
        const values = data.indicators[col];
        if (!values) return;
        const points = data.candles.map((k, j) => ({ time: k.open_time, value: values[j] ?? NaN }));
        const line = c.addSeries(LineSeries, {
          color: palette.series[i % palette.series.length], lineWidth: 1, title: col, priceLineVisible: false, lastValueVisible: false,
          ...(name === 'volume' ? { priceScaleId: 'volume' } : {}),
        }, paneOf);
        line.setData(toLine(points).map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
      });
    }
    const markers: SeriesMarker<UTCTimestamp>[] = [];
    const lines: string[] = [];
    const mark = (ms: unknown, side: unknown, exit: boolean, text: string) => {
      const at = snapToBar(times, Number(ms));
      if (at == null) return;
      const long = side === 'long';
      const up = exit ? !long : long;
      markers.push({ time: at as UTCTimestamp, position: up ? 'belowBar' : 'aboveBar', color: exit ? palette.neutral : long ? palette.up : palette.down, shape: up ? 'arrowUp' : 'arrowDown', text });
    };
    for (const t of trades) {
      mark(t.entry_time, t.side, false, `#${String(t.id)}`);
      mark(t.exit_time, t.side, true, `×${String(t.id)}`);
    }
    for (const p of positions) {
      mark(p.entry_time, p.side, false, `#${String(p.trade_id)}`);
      const line = (price: unknown, color: string, title: string) => {
        if (typeof price !== 'number') return;
        candles.createPriceLine({ price, color, lineStyle: LineStyle.Dashed, lineWidth: 1, axisLabelVisible: true, title });
        lines.push(`${title}@${price}`);
      };
      line(p.stop_loss, palette.down, `SL #${String(p.trade_id)}`);
      line(p.take_profit, palette.up, `TP #${String(p.trade_id)}`);
    }
    markers.sort((a, b) => a.time - b.time);
    createSeriesMarkers(candles, markers);
    c.timeScale().fitContent();
    // The chart is a canvas: what it drew is mirrored on the element for tests and assistive tools.
    const el = box.current;
    el.dataset.markers = String(markers.length);
    el.dataset.markerTexts = markers.map((m) => m.text).join(',');
    el.dataset.priceLines = lines.join(',');
    Object.assign(el.dataset, drawn);
    return () => {
      c.remove();
      delete el.dataset.markers;
      delete el.dataset.markerTexts;
      delete el.dataset.priceLines;
      for (const key of Object.keys(drawn)) delete el.dataset[key];
    };
  }, [chart.data, chosen, positions, trades, scheme, filters]);

  const toggle = (name: string) => setChosen(chosen.includes(name) ? chosen.filter((n) => n !== name) : [...chosen, name]);

  return (
    <Card title="Live chart">
      <div className="filters">
        <label>Symbol<input value={shown} onChange={(e) => setSymbol(e.target.value.toUpperCase())} /></label>
        <label>
          Timeframe
          <select value={timeframe} onChange={(e) => setTimeframe(e.target.value as (typeof TIMEFRAMES)[number])}>
            {TIMEFRAMES.map((t) => <option key={t}>{t}</option>)}
          </select>
        </label>
        <fieldset className="checks">
          <legend>Indicators</legend>
          {INDICATORS.map((name) => (
            <label key={name} className="check"><input type="checkbox" checked={chosen.includes(name)} onChange={() => toggle(name)} />{name}</label>
          ))}
        </fieldset>
      </div>
      <ErrorNote message={chart.error} />
      {!shown ? <p className="muted">Start a session or type a symbol.</p> : null}
      {shown && chart.data && !chart.data.candles.length ? <p className="muted">No candles stored for {shown} yet.</p> : null}
      <div className="chart tall" ref={box} role="img" aria-label={`${shown} ${timeframe} candles`} data-testid="candle-chart" data-theme={scheme} />
    </Card>
  );
}
