import { useEffect, useRef } from 'react';
import { LineSeries, createChart, type IChartApi, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';
import { toLine } from '../lib/chartData';
import { PALETTES, chartOptions, useColorScheme } from '../lib/theme';

export function LineChart({ points, label, height = 220 }: { points: { time: number; value: number }[]; label: string; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<'Line'> | null>(null);
  const scheme = useColorScheme();

  useEffect(() => {
    if (!box.current) return;
    chart.current = createChart(box.current, chartOptions('dark'));
    series.current = chart.current.addSeries(LineSeries, { lineWidth: 2 });
    return () => {
      chart.current?.remove();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    chart.current?.applyOptions(chartOptions(scheme));
    series.current?.applyOptions({ color: PALETTES[scheme].line });
  }, [scheme]);

  useEffect(() => {
    series.current?.setData(toLine(points).map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
    chart.current?.timeScale().fitContent();
  }, [points]);

  return <div className="chart" style={{ height }} ref={box} role="img" aria-label={label} data-theme={scheme} />;
}
