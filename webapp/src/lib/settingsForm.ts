// The settings form is built from the API's description of every setting (GET
// /api/paper-trading/settings/schema: label, kind, unit, help, range or choices) and the session's
// current values. Each input holds a draft (text for numbers, so a half-typed value stays as typed);
// a save sends only the fields whose draft changed, nested back into the API's shape.
//
// Two kinds of client-side message: a draft that does not parse (letters in a number, 2.5 for a
// whole number, an empty required field) is never sent, as the API would refuse its shape outright;
// an out-of-range number gets the server's own wording as a hint while typing, and the save still
// asks the server's dry run, whose verdict is the one that counts (some ranges depend on other
// settings, e.g. how many strategies vote).
import type { Schemas } from '../api/client';

export type SettingInfo = Schemas['SettingInfoOut'];
export type Section = SettingInfo['section'];
export const SECTIONS: readonly Section[] = ['basic', 'strategy', 'indicators'];

/** An input's content: text (numbers, text, a choice), a flag, the ticked items of a list, or a text per key of a map. */
export type Draft = string | boolean | string[] | Record<string, string>;

export type Json = null | number | string | boolean | Json[] | { [key: string]: Json };

/** The current settings, one object per section as GET …/basic-settings (etc.) return them. */
export type Values = Record<Section, Record<string, unknown>>;

// A setting whose value maps names to numbers: the schema gives the range of one entry, the names are
// the choices of another setting (the weights are per strategy, the strategies those that may vote).
const MAP_KEYS: Readonly<Record<string, string>> = { weights: 'enabled' };

export interface Field {
  info: SettingInfo;
  /** The keys of a map setting (one input each); absent for the others. */
  keys?: readonly string[];
  /** The draft of the current value: what the input shows until it is edited. */
  initial: Draft;
}

export function valueAt(settings: Record<string, unknown> | undefined, path: string): unknown {
  let node: unknown = settings;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

export function toDraft(info: SettingInfo, value: unknown, keys?: readonly string[]): Draft {
  if (keys) {
    const map = (value ?? {}) as Record<string, unknown>;
    return Object.fromEntries(keys.map((k) => [k, map[k] == null ? '' : String(map[k])]));
  }
  if (info.kind === 'flag') return Boolean(value);
  if (info.kind === 'list') return Array.isArray(value) ? info.choices.filter((c) => value.includes(c)) : [];
  return value == null ? '' : String(value);
}

/** The form's fields, section by section in the schema's order, with the drafts of the current values. */
export function buildFields(schema: readonly SettingInfo[], values: Values): Record<Section, Field[]> {
  const out: Record<Section, Field[]> = { basic: [], strategy: [], indicators: [] };
  for (const info of schema) {
    const keysFrom = MAP_KEYS[info.path];
    const keys = keysFrom ? schema.find((s) => s.path === keysFrom)?.choices ?? [] : undefined;
    out[info.section].push({ info, keys, initial: toDraft(info, valueAt(values[info.section], info.path), keys) });
  }
  return out;
}

/** What a choice or list item is called on screen: a strategy by the name its indicator settings' labels
 * use ("rsi" → "RSI", from "RSI length"), anything else with spaces for underscores. */
export function choiceText(schema: readonly SettingInfo[], choice: string): string {
  const named = schema.find((s) => s.section === 'indicators' && s.path.startsWith(`${choice}.`));
  return named ? named.label.split(' ')[0] : choice.replace(/_/g, ' ');
}

// -- the server's wording (trading/setting_catalog.py) ------------------------------------------------

/** Python's ``f"{x:g}"``: six significant digits, exponent form below 1e-4 and from 1e6 ("1e+09"). */
export function pyG(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan';
  const [mantissa, exp] = x.toExponential(5).split('e');
  const power = Number(exp);
  const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (power < -4 || power >= 6) return `${trim(mantissa)}e${power < 0 ? '-' : '+'}${String(Math.abs(power)).padStart(2, '0')}`;
  return trim(x.toFixed(Math.max(0, 5 - power)));
}

/** Python's ``repr`` of what the API received: an int for whole-number settings, a float otherwise. */
export function pyRepr(value: Json, asFloat: boolean): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value !== 'number') return String(value);
  if (!asFloat || !Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    const [mantissa, exp] = value.toExponential().split('e');
    const power = Number(exp);
    return `${mantissa}e${power < 0 ? '-' : '+'}${String(Math.abs(power)).padStart(2, '0')}`;
  }
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

/** "from 2 to 100 candles", "above 0 and below 100%", as the server says it. */
export function rangeText(info: SettingInfo): string {
  const unit = info.unit && info.unit !== '%' && info.unit !== 'x' ? ` ${info.unit}` : info.unit;
  const low = info.minimum == null ? null : pyG(info.minimum);
  const high = info.maximum == null ? null : `${pyG(info.maximum)}${unit}`;
  if (low !== null && high !== null) {
    if (!info.above_minimum && !info.below_maximum) return `from ${low} to ${high}`;
    return `${info.above_minimum ? `above ${low}` : `at least ${low}`} and ${info.below_maximum ? `below ${high}` : `at most ${high}`}`;
  }
  if (low !== null) return info.above_minimum ? `above ${low}${unit}` : `at least ${low}${unit}`;
  if (high !== null) return info.below_maximum ? `below ${high}` : `at most ${high}`;
  return '';
}

export function inRange(info: SettingInfo, value: number): boolean {
  const { minimum: min, maximum: max } = info;
  if (min != null && (info.above_minimum ? value <= min : value < min)) return false;
  return !(max != null && (info.below_maximum ? value >= max : value > max));
}

function what(info: SettingInfo): string {
  return info.kind === 'integer' ? 'a whole number' : 'a number';
}

/** The server's refusal of ``value``: "RSI length must be a whole number from 2 to 100 candles, got 100000". */
export function rangeMessage(info: SettingInfo, value: number): string {
  const off = info.optional ? ' (or off)' : '';
  return `${info.label} must be ${what(info)} ${rangeText(info)}${off}, got ${pyRepr(value, info.kind !== 'integer')}`;
}

// -- drafts to values ------------------------------------------------------------------------------

export type Parsed =
  | { ok: true; value: Json; hint?: string }
  | { ok: false; message: string };

function parseNumber(info: SettingInfo, text: string): Parsed {
  const trimmed = text.trim();
  const needs = `${what(info)} ${rangeText(info)}`.trimEnd();
  if (trimmed === '') {
    return info.optional ? { ok: true, value: null } : { ok: false, message: `${info.label} is empty: it must be ${needs}` };
  }
  const n = Number(trimmed);
  if (!Number.isFinite(n) || (info.kind === 'integer' && !Number.isInteger(n))) {
    return { ok: false, message: `${info.label} must be ${needs}, got ${trimmed}` };
  }
  return inRange(info, n) ? { ok: true, value: n } : { ok: true, value: n, hint: rangeMessage(info, n) };
}

/** The value a draft stands for, with the range hint when it is out of range; or why it cannot be sent. */
export function parseDraft(field: Field, draft: Draft): Parsed {
  const { info } = field;
  if (field.keys) {
    // An empty weight is the default (1); no weight at all turns the weighting off.
    const texts = draft as Record<string, string>;
    const map: Record<string, number> = {};
    const hints: string[] = [];
    for (const key of field.keys) {
      const text = (texts[key] ?? '').trim();
      if (text === '') continue;
      // Worded as the server words a weight: "rsi: Strategy weight must be …".
      const one = parseNumber({ ...info, optional: false }, text);
      if ('message' in one) return { ok: false, message: `${key}: ${one.message}` };
      map[key] = one.value as number;
      if (one.hint) hints.push(`${key}: ${one.hint}`);
    }
    const value = Object.keys(map).length ? map : null;
    return hints.length ? { ok: true, value, hint: hints.join('; ') } : { ok: true, value };
  }
  switch (info.kind) {
    case 'number':
    case 'integer':
      return parseNumber(info, String(draft));
    case 'flag':
      return { ok: true, value: Boolean(draft) };
    case 'list':
      return { ok: true, value: info.choices.filter((c) => (draft as string[]).includes(c)) };
    case 'choice':
      return draft === '' && info.optional ? { ok: true, value: null } : { ok: true, value: String(draft) };
    default: {
      const text = String(draft).trim();
      return text === '' && info.optional ? { ok: true, value: null } : { ok: true, value: text };
    }
  }
}

function same(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface SectionPatch {
  /** The changed settings, nested as the API takes them ({rsi: {length: 21}}). */
  patch: Record<string, Json>;
  /** Drafts that cannot be sent, by path. */
  errors: Record<string, string>;
}

/** The patch of one section: the fields whose draft stands for another value than the current one. */
export function sectionPatch(fields: readonly Field[], drafts: Readonly<Record<string, Draft>>): SectionPatch {
  const patch: Record<string, Json> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const path = field.info.path;
    if (!(path in drafts)) continue;
    const parsed = parseDraft(field, drafts[path]);
    if ('message' in parsed) {
      errors[path] = parsed.message;
      continue;
    }
    const before = parseDraft(field, field.initial);
    if ('value' in before && same(parsed.value, before.value)) continue;
    const keys = path.split('.');
    let node = patch;
    for (const key of keys.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, Json>;
    }
    node[keys[keys.length - 1]] = parsed.value;
  }
  return { patch, errors };
}

/** The form field a server's ``detail.field`` is about: "rsi.length" itself, "indicators.rsi.length"
 * (a schema error's location), "weights.rsi" → "weights"; null when no field of the form matches. */
export function fieldOf(name: string | null | undefined, paths: readonly string[]): string | null {
  if (!name) return null;
  const candidates = [name, ...SECTIONS.filter((s) => name.startsWith(`${s}.`)).map((s) => name.slice(s.length + 1))];
  for (const candidate of candidates) {
    if (paths.includes(candidate)) return candidate;
    const parent = paths.filter((p) => candidate.startsWith(`${p}.`)).sort((a, b) => b.length - a.length)[0];
    if (parent) return parent;
  }
  return null;
}
