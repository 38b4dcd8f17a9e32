import { useMemo, useRef, useState, type FormEvent } from 'react';
import { ApiError, call, errorText, http } from '../api/client';
import { AgentAccessCard } from '../components/AgentAccess';
import { ApiKeysCard } from '../components/ApiKeys';
import { SettingField, type FieldMessage } from '../components/SettingField';
import { TelegramCard } from '../components/TelegramLink';
import { TwoFactorCard } from '../components/TwoFactor';
import { Card, ErrorNote } from '../components/ui';
import { useLoad } from '../lib/hooks';
import {
  buildFields, fieldOf, sectionPatch, type Draft, type Field, type Section, type SettingInfo, type Values,
} from '../lib/settingsForm';
import { problemFromCheck } from '../lib/validation';

const TITLES: Record<Section, string> = { basic: 'Basic settings', strategy: 'Strategy settings', indicators: 'Indicator settings' };
/** Settings that define the account: they change only while it is fresh (before the first start, or after a reset). */
const ACCOUNT_DEFINING = new Set(['market', 'account_currency']);
const LOCKED_NOTE = 'Locked: this account has been started. Reset it on the overview to change this.';

interface Loaded {
  values: Values;
  version: number | null;
  status: string;
}

// There is no GET of all sections at once: the three section reads, again if a change landed between them.
async function loadValues(): Promise<Loaded> {
  for (let attempt = 0; ; attempt += 1) {
    const [basic, strategy, indicators] = await Promise.all([
      call(() => http.GET('/api/paper-trading/basic-settings')),
      call(() => http.GET('/api/paper-trading/strategy-settings')),
      call(() => http.GET('/api/paper-trading/indicator-settings')),
    ]);
    const versions = new Set([basic.version, strategy.version, indicators.version]);
    if (versions.size === 1 || attempt === 2) {
      return {
        values: { basic: basic.settings, strategy: strategy.settings, indicators: indicators.settings },
        version: basic.version ?? null,
        status: basic.status,
      };
    }
  }
}

function SectionForm({ section, fields, schema, loaded, drafts, setDraft, onSaved, onConflict }: {
  section: Section;
  fields: Field[];
  schema: readonly SettingInfo[];
  loaded: Loaded;
  drafts: Record<string, Draft>;
  setDraft: (path: string, draft: Draft | undefined) => void;
  onSaved: (next: Loaded) => void;
  onConflict: () => void;
}) {
  const form = useRef<HTMLFormElement>(null);
  const [refused, setRefused] = useState<{ path: string; text: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const fresh = loaded.status === 'new';
  const currency = String(loaded.values.basic.account_currency ?? '') || undefined;

  const refuse = (field: string | null | undefined, text: string) => {
    const path = fieldOf(field, fields.map((f) => f.info.path));
    if (!path) {
      setError(`Not saved: ${text}`);
      return;
    }
    // The reason stands next to the field (announced, and its input's description); the focus takes the
    // person there however far up the form it is.
    setRefused({ path, text });
    form.current?.querySelector<HTMLElement>(`[data-path="${path}"] input, [data-path="${path}"] select`)?.focus();
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    setError(null);
    setRefused(null);
    const { patch, errors } = sectionPatch(fields, drafts);
    const numbers = form.current ? Array.from(form.current.querySelectorAll<HTMLInputElement>('input[type=number]')) : [];
    const unparsable = numbers.find((i) => i.validity.badInput);
    const wrong = Object.keys(errors)[0];
    if (wrong || unparsable) {
      setError('Not saved: correct the highlighted settings first.');
      (unparsable ?? form.current?.querySelector<HTMLElement>(`[data-path="${wrong}"] input`))?.focus();
      return;
    }
    if (!Object.keys(patch).length) {
      setError('Nothing changed.');
      return;
    }
    setBusy(true);
    try {
      // The dry run first, so a change the session would refuse is explained without a failed write; the
      // version read alongside it tells whether someone else changed the settings since they were loaded.
      const [check, now] = await Promise.all([
        call(() => http.POST('/api/paper-trading/settings/check', { body: { [section]: patch } as never })),
        call(() => http.GET('/api/paper-trading/basic-settings')),
      ]);
      const problem = problemFromCheck(check);
      if (problem) {
        refuse(problem.field, problem.message);
        return;
      }
      if ((now.version ?? null) !== loaded.version) {
        setError(`The settings changed elsewhere since this page loaded them (version ${loaded.version ?? 0} → ${now.version ?? 0}). `
          + 'The current values are shown now and your changes are kept: check them and save again.');
        onConflict();
        return;
      }
      const body = { [section]: patch, expected_version: loaded.version ?? undefined };
      const done = await call(() => http.PUT('/api/paper-trading/settings', { body: body as never }));
      for (const f of fields) setDraft(f.info.path, undefined);
      onSaved({ values: { basic: done.basic, strategy: done.strategy, indicators: done.indicators }, version: done.version ?? null, status: done.status });
      setSaved(true);
    } catch (err) {
      if (err instanceof ApiError && err.problem.status === 409) {
        setError(`The settings changed elsewhere meanwhile (${err.problem.message}). `
          + 'The current values are shown now and your changes are kept: check them and save again.');
        onConflict();
      } else if (err instanceof ApiError && err.problem.status === 422) {
        refuse(err.problem.field, err.problem.message);
      } else {
        setError(errorText(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title={TITLES[section]} wide>
      <form ref={form} className="form settings" onSubmit={submit} noValidate aria-label={TITLES[section]} data-testid={`settings-${section}`}>
        <div className="setting-grid">
          {fields.map((f) => {
            const path = f.info.path;
            const locked = ACCOUNT_DEFINING.has(path) && !fresh;
            const message: FieldMessage | null = refused?.path === path ? { text: refused.text, from: 'server' } : null;
            return (
              <SettingField key={path} field={f} schema={schema} draft={drafts[path] ?? f.initial} message={message}
                disabled={locked} note={locked ? LOCKED_NOTE : undefined}
                unit={f.info.unit === 'account currency' ? currency : undefined}
                onChange={(d) => {
                  if (refused?.path === path) setRefused(null);
                  setSaved(false);
                  setDraft(path, d);
                }} />
            );
          })}
        </div>
        <ErrorNote message={error} />
        {saved ? <p className="ok" role="status">Saved.</p> : null}
        <div className="button-row">
          <button type="submit" className="primary" disabled={busy}>Save {TITLES[section].toLowerCase()}</button>
        </div>
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
  const schema = useLoad(() => call(() => http.GET('/api/paper-trading/settings/schema')));
  const loaded = useLoad(loadValues);
  // A save's answer holds every section: it stands in for a reload.
  const [saved, setSaved] = useState<Loaded | null>(null);
  const current = saved && (!loaded.data || (saved.version ?? 0) >= (loaded.data.version ?? 0)) ? saved : loaded.data;
  // Drafts live here, across sections, so a reload after a conflict keeps what the person typed.
  const [drafts, setDrafts] = useState<Record<string, Draft>>({});
  const fields = useMemo(
    () => (schema.data && current ? buildFields(schema.data, current.values) : null),
    [schema.data, current],
  );
  const setDraft = (path: string, draft: Draft | undefined) => setDrafts((held) => {
    const next = { ...held };
    if (draft === undefined) delete next[path];
    else next[path] = draft;
    return next;
  });

  return (
    <div className="grid">
      {fields && schema.data && current ? (
        (['basic', 'strategy', 'indicators'] as const).map((section) => (
          <SectionForm key={section} section={section} fields={fields[section]} schema={schema.data!} loaded={current}
            drafts={drafts} setDraft={setDraft} onSaved={setSaved}
            onConflict={() => { setSaved(null); loaded.reload(); }} />
        ))
      ) : (
        <Card title="Settings" wide>
          {schema.error || loaded.error ? <ErrorNote message={schema.error ?? loaded.error} /> : <p className="muted">Loading…</p>}
        </Card>
      )}
      <SymbolsForm />
      <TwoFactorCard />
      <ApiKeysCard />
      <AgentAccessCard />
      <TelegramCard />
    </div>
  );
}
