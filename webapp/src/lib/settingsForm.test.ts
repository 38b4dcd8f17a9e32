import { describe, expect, it } from 'vitest';
import {
  buildFields, choiceText, fieldOf, parseDraft, pyG, pyRepr, rangeMessage, sectionPatch, type SettingInfo, type Values,
} from './settingsForm';

// Entries as GET /api/paper-trading/settings/schema gives them (trading/setting_catalog.py).
const info = (path: string, section: SettingInfo['section'], label: string, more: Partial<SettingInfo> = {}): SettingInfo => ({
  path, section, label, kind: 'number', unit: '', help: '', minimum: null, maximum: null, above_minimum: false,
  below_maximum: false, choices: [], optional: false, ...more,
});
const SCHEMA: SettingInfo[] = [
  info('market', 'basic', 'Market type', { kind: 'choice', choices: ['futures', 'spot'], help: 'Changes only on a fresh account.' }),
  info('leverage', 'basic', 'Leverage', { kind: 'integer', unit: 'x', minimum: 1, maximum: 125 }),
  info('starting_balance', 'basic', 'Starting balance', { unit: 'account currency', minimum: 0, above_minimum: true, maximum: 1e9 }),
  info('taker_fee', 'basic', 'Taker fee', { unit: 'fraction', minimum: -0.01, maximum: 0.1, below_maximum: true }),
  info('fill_price', 'basic', 'Fill price of signal trades', { kind: 'choice', choices: ['next_open', 'close'] }),
  info('stop_loss_pct', 'basic', 'Stop loss', { unit: '%', minimum: 0, above_minimum: true, maximum: 100, below_maximum: true, optional: true }),
  info('close_on_opposite_signal', 'basic', 'Close on an opposite signal', { kind: 'flag' }),
  info('seed', 'basic', 'Random seed', { kind: 'integer', minimum: 0, maximum: 2 ** 31 - 1 }),
  info('risk.cooldown_minutes', 'basic', 'Pause after a losing streak', { unit: 'minutes', minimum: 0, maximum: 10_080 }),
  info('risk.enabled', 'basic', 'Risk checks on', { kind: 'list', choices: ['risk_per_trade', 'stop_loss', 'daily_loss'] }),
  info('enabled', 'strategy', 'Strategies that vote', { kind: 'list', choices: ['rsi', 'macd', 'volume'] }),
  info('weights', 'strategy', 'Strategy weight', { minimum: 0, above_minimum: true, maximum: 10 }),
  info('rsi.length', 'indicators', 'RSI length', { kind: 'integer', unit: 'candles', minimum: 2, maximum: 100 }),
  info('macd.fast', 'indicators', 'MACD fast length', { kind: 'integer', unit: 'candles', minimum: 2, maximum: 100 }),
  info('volume.min_ratio', 'indicators', 'Volume spike ratio', { unit: 'x the average', minimum: 1, above_minimum: true, maximum: 20 }),
];
const VALUES: Values = {
  basic: {
    market: 'futures', leverage: 10, starting_balance: 10000, taker_fee: 0.0004, fill_price: 'next_open', stop_loss_pct: 2,
    close_on_opposite_signal: true, seed: 0, risk: { cooldown_minutes: 0, enabled: ['daily_loss', 'risk_per_trade'] },
    symbols: [{ symbol: 'LTCBTC', tick_size: 1e-6 }],
  },
  strategy: { enabled: ['rsi', 'volume'], min_agree: 1, weights: null },
  indicators: { rsi: { length: 14 }, macd: { fast: 12 }, volume: { min_ratio: 1.5 } },
};
const FIELDS = buildFields(SCHEMA, VALUES);
const field = (path: string) => Object.values(FIELDS).flat().find((f) => f.info.path === path)!;

describe('settings form: built from the schema', () => {
  it('puts every setting of the schema in its section, in order, and nothing the schema does not describe', () => {
    expect(FIELDS.basic.map((f) => f.info.path)).toEqual(SCHEMA.filter((s) => s.section === 'basic').map((s) => s.path));
    expect(FIELDS.indicators.map((f) => f.info.path)).toEqual(['rsi.length', 'macd.fast', 'volume.min_ratio']);
    expect(Object.values(FIELDS).flat().some((f) => f.info.path === 'symbols')).toBe(false);
  });
  it('drafts the current values: numbers as text, flags, ticked list items in the schema\'s order, a text per weight', () => {
    expect(field('rsi.length').initial).toBe('14');
    expect(field('taker_fee').initial).toBe('0.0004');
    expect(field('close_on_opposite_signal').initial).toBe(true);
    expect(field('risk.enabled').initial).toEqual(['risk_per_trade', 'daily_loss']);
    expect(field('weights').keys).toEqual(['rsi', 'macd', 'volume']);
    expect(field('weights').initial).toEqual({ rsi: '', macd: '', volume: '' });
    expect(buildFields(SCHEMA, { ...VALUES, strategy: { weights: { macd: 2 } } }).strategy[1].initial).toEqual({ rsi: '', macd: '2', volume: '' });
  });
  it('names strategies as their settings\' labels do, and other choices with spaces', () => {
    expect(choiceText(SCHEMA, 'rsi')).toBe('RSI');
    expect(choiceText(SCHEMA, 'macd')).toBe('MACD');
    expect(choiceText(SCHEMA, 'volume')).toBe('Volume');
    expect(choiceText(SCHEMA, 'next_open')).toBe('next open');
    expect(choiceText([...SCHEMA, info('risk.risk_per_trade_pct', 'basic', 'Risk per trade')], 'risk')).toBe('risk');
  });
});

describe('settings form: the server\'s wording', () => {
  it('formats numbers as Python\'s :g and repr do', () => {
    expect([pyG(1e9), pyG(2 ** 31 - 1), pyG(-0.01), pyG(0.1), pyG(10_080), pyG(100), pyG(0.0001), pyG(0.00001)])
      .toEqual(['1e+09', '2.14748e+09', '-0.01', '0.1', '10080', '100', '0.0001', '1e-05']);
    expect([pyRepr(100000, false), pyRepr(150, true), pyRepr(0.5, true), pyRepr(0.00001, true), pyRepr('x', false)])
      .toEqual(['100000', '150.0', '0.5', '1e-05', "'x'"]);
  });
  // Each expected text is what trading/setting_catalog.py answers for the same value.
  it('words a range message as the server does', () => {
    expect(rangeMessage(field('rsi.length').info, 100000)).toBe('RSI length must be a whole number from 2 to 100 candles, got 100000');
    expect(rangeMessage(field('leverage').info, 0)).toBe('Leverage must be a whole number from 1 to 125x, got 0');
    expect(rangeMessage(field('stop_loss_pct').info, 150)).toBe('Stop loss must be a number above 0 and below 100% (or off), got 150.0');
    expect(rangeMessage(field('starting_balance').info, 0))
      .toBe('Starting balance must be a number above 0 and at most 1e+09 account currency, got 0.0');
    expect(rangeMessage(field('taker_fee').info, 0.1)).toBe('Taker fee must be a number at least -0.01 and below 0.1 fraction, got 0.1');
    expect(rangeMessage(field('seed').info, -1)).toBe('Random seed must be a whole number from 0 to 2.14748e+09, got -1');
    expect(rangeMessage(field('risk.cooldown_minutes').info, 20000))
      .toBe('Pause after a losing streak must be a number from 0 to 10080 minutes, got 20000.0');
    expect(rangeMessage(field('volume.min_ratio').info, 1))
      .toBe('Volume spike ratio must be a number above 1 and at most 20 x the average, got 1.0');
  });
});

describe('settings form: drafts to values', () => {
  it('hints at an out-of-range number but still sends it, for the server to judge', () => {
    expect(parseDraft(field('rsi.length'), '100000')).toEqual({
      ok: true, value: 100000, hint: 'RSI length must be a whole number from 2 to 100 candles, got 100000' });
    expect(parseDraft(field('rsi.length'), ' 21 ')).toEqual({ ok: true, value: 21 });
  });
  it('refuses what the API could not even read: letters, fractions of a whole number, an empty required value', () => {
    expect(parseDraft(field('rsi.length'), '2.5')).toEqual({ ok: false, message: 'RSI length must be a whole number from 2 to 100 candles, got 2.5' });
    expect(parseDraft(field('taker_fee'), 'abc')).toEqual({ ok: false, message: 'Taker fee must be a number at least -0.01 and below 0.1 fraction, got abc' });
    expect(parseDraft(field('leverage'), '')).toEqual({ ok: false, message: 'Leverage is empty: it must be a whole number from 1 to 125x' });
    expect(parseDraft(field('stop_loss_pct'), '')).toEqual({ ok: true, value: null });
  });
  it('turns weights into a map of the filled ones, none into no weighting, each checked like the server does', () => {
    expect(parseDraft(field('weights'), { rsi: '2', macd: '', volume: '0.5' })).toEqual({ ok: true, value: { rsi: 2, volume: 0.5 } });
    expect(parseDraft(field('weights'), { rsi: '', macd: '', volume: '' })).toEqual({ ok: true, value: null });
    expect(parseDraft(field('weights'), { rsi: '11', macd: '', volume: '' })).toEqual({
      ok: true, value: { rsi: 11 }, hint: 'rsi: Strategy weight must be a number above 0 and at most 10, got 11.0' });
    expect(parseDraft(field('weights'), { rsi: 'x', macd: '', volume: '' })).toEqual({
      ok: false, message: 'rsi: Strategy weight must be a number above 0 and at most 10, got x' });
  });
});

describe('settings form: the patch', () => {
  it('sends only what changed, nested as the API takes it', () => {
    const { patch, errors } = sectionPatch(FIELDS.basic, {
      leverage: '10.0', 'risk.cooldown_minutes': '30', 'risk.enabled': ['daily_loss', 'risk_per_trade'], stop_loss_pct: '',
      close_on_opposite_signal: false, market: 'spot',
    });
    expect(errors).toEqual({});
    expect(patch).toEqual({ risk: { cooldown_minutes: 30 }, stop_loss_pct: null, close_on_opposite_signal: false, market: 'spot' });
    expect(sectionPatch(FIELDS.basic, {})).toEqual({ patch: {}, errors: {} });
  });
  it('sends a list in the schema\'s order and the whole weight map', () => {
    expect(sectionPatch(FIELDS.strategy, { enabled: ['volume', 'macd', 'rsi'], weights: { rsi: '', macd: '3', volume: '' } }).patch)
      .toEqual({ enabled: ['rsi', 'macd', 'volume'], weights: { macd: 3 } });
  });
  it('keeps a draft that cannot be sent out of the patch, naming it', () => {
    expect(sectionPatch(FIELDS.indicators, { 'rsi.length': 'ten', 'macd.fast': '8' }))
      .toEqual({ patch: { macd: { fast: 8 } }, errors: { 'rsi.length': 'RSI length must be a whole number from 2 to 100 candles, got ten' } });
  });
  it('finds the field a server\'s rejection names', () => {
    const paths = SCHEMA.map((s) => s.path);
    expect(fieldOf('rsi.length', paths)).toBe('rsi.length');
    expect(fieldOf('indicators.rsi.length', paths)).toBe('rsi.length');
    expect(fieldOf('basic.risk.enabled.0', paths)).toBe('risk.enabled');
    expect(fieldOf('weights', paths)).toBe('weights');
    expect(fieldOf('expected_version', paths)).toBeNull();
    expect(fieldOf(null, paths)).toBeNull();
  });
});
