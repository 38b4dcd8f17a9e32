import { useMemo, useState, type FormEvent } from 'react';
import { ApiError, call, errorText, http } from '../api/client';
import { Card, ErrorNote } from '../components/ui';
import { useLoad } from '../lib/hooks';
import { buildPatch, flatten, type Field } from '../lib/settingsForm';
import { describe, problemFromCheck } from '../lib/validation';

type Section = 'basic' | 'strategy' | 'indicator';

const LOAD = {
  basic: () => call(() => http.GET('/api/paper-trading/basic-settings')),
  strategy: () => call(() => http.GET('/api/paper-trading/strategy-settings')),
  indicator: () => call(() => http.GET('/api/paper-trading/indicator-settings')),
};

// The patch holds only fields read from the API, so the generated body types are asserted, not built.
const SAVE = {
  basic: (body: object) => call(() => http.PUT('/api/paper-trading/basic-settings', { body: body as never })),
  strategy: (body: object) => call(() => http.PUT('/api/paper-trading/strategy-settings', { body: body as never })),
  indicator: (body: object) => call(() => http.PUT('/api/paper-trading/indicator-settings', { body: body as never })),
};

// The dry run takes the PUT /settings body, where the indicator section is called "indicators".
const CHECK_KEY: Record<Section, string> = { basic: 'basic', strategy: 'strategy', indicator: 'indicators' };
const CHECK = (section: Section, patch: object) =>
  call(() => http.POST('/api/paper-trading/settings/check', { body: { [CHECK_KEY[section]]: patch } as never }));

const TITLES: Record<Section, string> = { basic: 'Basic settings', strategy: 'Strategy settings', indicator: 'Indicator settings' };

function FieldInput({ field, value, onChange, invalid }: {
  field: Field; value: string | boolean; onChange: (v: string | boolean) => void; invalid: boolean;
}) {
  const id = `f-${field.path}`;
  if (field.kind === 'boolean') {
    return (
      <label className="check" htmlFor={id}>
        <input id={id} type="checkbox" checked={Boolean(value)} onChange={(e) => onChange(e.target.checked)} />
        {field.path}
      </label>
    );
  }
  return (
    <label htmlFor={id}>
      {field.path}
      <input id={id} name={field.path} aria-invalid={invalid} inputMode={field.kind === 'number' ? 'decimal' : undefined}
        value={String(value)} onChange={(e) => onChange(e.target.value)} />
    </label>
  );
}

function SectionForm({ section }: { section: Section }) {
  const loaded = useLoad(LOAD[section]);
  const fields = useMemo(() => flatten((loaded.data?.settings ?? {}) as Record<string, unknown>), [loaded.data]);
  const [edits, setEdits] = useState<Record<string, string | boolean>>({});
  const [error, setError] = useState<{ field: string | null; text: string } | null>(null);
  const [saved, setSaved] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    setError(null);
    const patch = buildPatch(fields, edits);
    if (!Object.keys(patch).length) {
      setError({ field: null, text: 'Nothing changed.' });
      return;
    }
    try {
      // Asked first so that a change the session would reject is explained without a failed write.
      const problem = problemFromCheck(await CHECK(section, patch));
      if (problem) {
        setError({ field: problem.field, text: describe(problem) });
        return;
      }
      await SAVE[section](patch);
      setEdits({});
      setSaved(true);
      loaded.reload();
    } catch (err) {
      setError({ field: err instanceof ApiError ? err.problem.field : null, text: errorText(err) });
    }
  };

  return (
    <Card title={TITLES[section]}>
      <form className="form settings" onSubmit={submit} aria-label={TITLES[section]} data-testid={`settings-${section}`}>
        <div className="fields">
          {fields.map((f) => (
            <FieldInput key={f.path} field={f} invalid={error?.field === f.path}
              value={edits[f.path] ?? (f.kind === 'boolean' ? Boolean(f.value) : f.value == null ? '' : String(f.value))}
              onChange={(v) => setEdits({ ...edits, [f.path]: v })} />
          ))}
        </div>
        <ErrorNote message={error?.text ?? loaded.error} />
        {saved ? <p className="ok" role="status">Saved.</p> : null}
        <button type="submit" className="primary">Save {TITLES[section].toLowerCase()}</button>
      </form>
    </Card>
  );
}

function SymbolsForm() {
  const loaded = useLoad(() => call(() => http.GET('/api/paper-trading/symbols')));
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const value = text ?? loaded.data?.symbols.join(', ') ?? '';

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    setError(null);
    const symbols = value.split(',').map((s) => s.trim()).filter(Boolean);
    try {
      await call(() => http.PUT('/api/paper-trading/symbols', { body: { symbols } }));
      setText(null);
      setSaved(true);
      loaded.reload();
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <Card title="Symbols">
      <form className="form" onSubmit={submit} aria-label="Symbols" data-testid="settings-symbols">
        <label>
          Symbols (comma-separated)
          <input value={value} onChange={(e) => setText(e.target.value)} />
        </label>
        <ErrorNote message={error ?? loaded.error} />
        {saved ? <p className="ok" role="status">Saved.</p> : null}
        <button type="submit" className="primary">Save symbols</button>
      </form>
    </Card>
  );
}

export function Settings() {
  return (
    <div className="grid">
      <SectionForm section="basic" />
      <SectionForm section="strategy" />
      <SectionForm section="indicator" />
      <SymbolsForm />
    </div>
  );
}
