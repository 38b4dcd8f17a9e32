import { describe, expect, it } from 'vitest';
import { durationText, flatten, parseDatasets } from './Backtests';

describe('backtests page helpers', () => {
  it('reads symbols and interval from data file names', () => {
    expect(parseDatasets(' ETHBTC-5m-2018-01.csv.gz, LTCBTC-5m-2018-01.csv.gz ')).toEqual({
      files: ['ETHBTC-5m-2018-01.csv.gz', 'LTCBTC-5m-2018-01.csv.gz'], symbols: ['ETHBTC', 'LTCBTC'], interval: '5m',
    });
    expect(parseDatasets('')).toEqual({ files: [], symbols: [], interval: null });
    // A name that says nothing stays as given: the API names the problem.
    expect(parseDatasets('data.csv').symbols).toEqual(['data.csv']);
  });

  it('flattens nested settings into sorted paths, lists whole', () => {
    expect(flatten({ engine: { risk: { enabled: ['a', 'b'] }, leverage: 3 }, symbols: ['X'], weights: null, empty: {} })).toEqual([
      ['empty', {}], ['engine.leverage', 3], ['engine.risk.enabled', ['a', 'b']], ['symbols', ['X']], ['weights', null],
    ]);
  });

  it('writes durations as days and hours:minutes', () => {
    expect(durationText(25 * 60_000)).toBe('00:25');
    expect(durationText((2 * 1440 + 3 * 60 + 5) * 60_000)).toBe('2d 03:05');
    expect(durationText(null)).toBe('—');
  });
});
