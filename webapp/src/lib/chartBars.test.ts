import { describe, expect, it } from 'vitest';
import { histogramBars, volumeBars } from './chartData';

describe('chart bars', () => {
  const candles = [
    { open_time: 1_000_000, open: 1, close: 2, volume: 10 },
    { open_time: 1_300_000, open: 2, close: 1.5, volume: 4 },
    { open_time: 1_600_000, open: 1.5, close: 1.5, volume: 0 },
  ];
  it('draws a volume bar per candle in the colour of the candle', () => {
    expect(volumeBars(candles, 'up', 'down')).toEqual([
      { time: 1000, value: 10, color: 'up' }, { time: 1300, value: 4, color: 'down' }, { time: 1600, value: 0, color: 'up' }]);
  });
  it('draws the MACD histogram where it is defined, coloured by sign', () => {
    expect(histogramBars(candles, [null, -0.5, 0.25], 'up', 'down')).toEqual([
      { time: 1300, value: -0.5, color: 'down' }, { time: 1600, value: 0.25, color: 'up' }]);
    expect(histogramBars(candles, [], 'up', 'down')).toEqual([]);
  });
});
