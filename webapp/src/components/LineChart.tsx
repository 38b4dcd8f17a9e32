import { useEffect, useRef } from 'react';
import { ColorType, LineSeries, createChart, type IChartApi, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';
import { toLine } from '../lib/chartData';

export const CHART_THEME = {
  layout: { background: { type: ColorType.Solid, color: '#11161d' }, textColor: '#c9d4e0' },
  grid: { vertLines: { color: '#1e2731' }, horzLines: { color: '#1e2731' } },
  timeScale: { timeVisible: true, secondsVisible: false },
  autoSize: true,
} as const;

export function LineChart({ points, label, height = 220 }: { points: { time: number; value: number }[]; label: string; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<'Line'> | null>(null);

  useEffect(() => {
    if (!box.current) return;
    chart.current = createChart(box.current, CHART_THEME);
    series.current = chart.current.addSeries(LineSeries, { color: '#4da3ff', lineWidth: 2 });
    return () => {
      chart.current?.remove();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    series.current?.setData(toLine(points).map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
    chart.current?.timeScale().fitContent();
  }, [points]);

  return <div className="chart" style={{ height }} ref={box} role="img" aria-label={label} />;
}
