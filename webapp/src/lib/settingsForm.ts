// The settings pages edit whatever the API returns: nested settings flatten to dotted fields
// ("risk.cooldown_minutes"), and a save sends only the fields that changed, nested back, so the
// API's per-field validation message names exactly what the person typed.

export type Leaf = number | string | boolean | null;

export interface Field {
  path: string;
  value: Leaf;
  kind: 'number' | 'text' | 'boolean' | 'list';
}

type Json = Leaf | Json[] | { [key: string]: Json };

export function flatten(settings: Record<string, unknown>, prefix = ''): Field[] {
  const out: Field[] = [];
  for (const [key, value] of Object.entries(settings)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      out.push(...flatten(value as Record<string, unknown>, path));
    } else if (Array.isArray(value)) {
      out.push({ path, value: value.join(', '), kind: 'list' });
    } else if (typeof value === 'number') out.push({ path, value, kind: 'number' });
    else if (typeof value === 'boolean') out.push({ path, value, kind: 'boolean' });
    else out.push({ path, value: value == null ? null : String(value), kind: 'text' });
  }
  return out;
}

/** The typed value of an edited field; the raw text when it does not parse, so the API can say why. */
export function parseField(field: Field, raw: string | boolean): Json {
  if (field.kind === 'boolean') return Boolean(raw);
  const text = String(raw).trim();
  if (field.kind === 'number') {
    if (text === '') return null;
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  }
  if (field.kind === 'list') return text === '' ? [] : text.split(',').map((s) => s.trim()).filter(Boolean);
  return text === '' && field.value == null ? null : text;
}

function same(a: Json, b: Leaf, kind: Field['kind']): boolean {
  if (kind === 'list') return (Array.isArray(a) ? a.join(', ') : a) === b;
  return a === b;
}

/** The nested patch of the fields whose edited value differs from the loaded one. */
export function buildPatch(fields: readonly Field[], edits: Readonly<Record<string, string | boolean>>): Record<string, Json> {
  const patch: Record<string, Json> = {};
  for (const field of fields) {
    if (!(field.path in edits)) continue;
    const value = parseField(field, edits[field.path]);
    if (same(value, field.value, field.kind)) continue;
    const keys = field.path.split('.');
    let node = patch;
    for (const key of keys.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, Json>;
    }
    node[keys[keys.length - 1]] = value;
  }
  return patch;
}
