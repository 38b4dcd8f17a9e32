// Exchange API keys: the stored ones (only the key's last 4 characters ever come back), adding one (key and
// secret are password inputs, cleared once saved), testing what the exchange lets it do, deleting it.
// Saving, testing and deleting need a recent two-factor code: api/client.ts asks for one where needed.
import { useState, type FormEvent } from 'react';
import { ApiError, call, errorText, http, type Schemas } from '../api/client';
import { formatTime } from '../lib/format';
import { useAction, useLoad } from '../lib/hooks';
import { parseServerTime } from '../lib/twoFactor';
import { ConfirmButton } from './Confirm';
import { Card, ErrorNote } from './ui';

type Key = Schemas['ApiKeyOut'];
type KeyTest = Schemas['KeyTestOut'];

const FIELD_LABELS: Record<string, string> = { label: 'Label', exchange: 'Exchange', api_key: 'API key', api_secret: 'API secret' };

function saveError(err: unknown): string {
  if (!(err instanceof ApiError)) return errorText(err);
  const { field, message } = err.problem;
  return field ? `${FIELD_LABELS[field] ?? field}: ${message}` : message;
}

export function ApiKeysCard() {
  const keys = useLoad(() => call(() => http.GET('/api/settings/api-keys')));
  const { busy, error, run: runAction } = useAction();

  const run = async (act: () => Promise<void>) => {
    await runAction(act);
    keys.reload();
  };
  const test = (key: Key) => run(async () => {
    await call(() => http.POST('/api/settings/api-keys/{key_id}/test', { params: { path: { key_id: key.key_id } } }));
  });
  const remove = (key: Key) => run(async () => {
    await call(() => http.DELETE('/api/settings/api-keys/{key_id}', { params: { path: { key_id: key.key_id } } }));
  });

  return (
    <Card title="Exchange API keys">
      {keys.data === undefined ? (
        keys.error ? <ErrorNote message={keys.error} /> : <p className="muted">Loading…</p>
      ) : keys.data.length === 0 ? (
        <p className="muted" data-testid="no-api-keys">No exchange key yet. Paper trading needs none.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="api-keys">
            <thead><tr><th>Label</th><th>Exchange</th><th>Key</th><th>Added</th><th>Last test</th><th /></tr></thead>
            <tbody>
              {keys.data.map((key) => (
                <tr key={key.key_id} data-key-id={key.key_id}>
                  <td>{key.label}</td>
                  <td>{key.exchange}</td>
                  <td><code>{key.api_key_masked}</code></td>
                  <td>{formatTime(parseServerTime(key.created_at))}</td>
                  <td className="wrap"><TestResult test={key.last_test ?? null} /></td>
                  <td>
                    <div className="button-row tight">
                      <button className="small" disabled={busy} aria-label={`Test ${key.label}`}
                        onClick={() => void test(key)}>
                        Test
                      </button>
                      <ConfirmButton className="small danger" disabled={busy} label={`Delete ${key.label}`}
                        onConfirm={() => void remove(key)} confirm={() => ({
                          title: `Delete the key “${key.label}”?`,
                          body: <p>Durabot forgets key {key.api_key_masked}. To stop it working at all, delete it at the exchange too.</p>,
                          action: `Delete ${key.label}`,
                        })}>
                        Delete
                      </ConfirmButton>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ErrorNote message={error} />
      <AddKeyForm onSaved={keys.reload} />
    </Card>
  );
}

function TestResult({ test }: { test: KeyTest | null }) {
  if (!test) return <span className="muted">not tested</span>;
  const when = formatTime(parseServerTime(test.tested_at));
  if (!test.ok) return <span className="pnl down">Refused {when}: {test.error ?? 'the exchange refused it'}</span>;
  return (
    <span>
      <span className="pnl up">Accepted {when}</span>
      {test.warnings.length ? <ul className="changes">{test.warnings.map((w) => <li key={w}>{w}</li>)}</ul> : null}
    </span>
  );
}

function AddKeyForm({ onSaved }: { onSaved: () => void }) {
  const [label, setLabel] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [apiSecret, setApiSecret] = useState('');
  const [saved, setSaved] = useState<string | null>(null);
  const { busy, error, run } = useAction((err) => `Not saved: ${saveError(err)}`);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setSaved(null);
    await run(async () => {
      const key = await call(() => http.POST('/api/settings/api-keys', {
        body: { label: label.trim(), exchange: 'binance', api_key: apiKey.trim(), api_secret: apiSecret.trim() },
      }));
      // The secrets leave the page as soon as the server holds them.
      setApiKey('');
      setApiSecret('');
      setLabel('');
      setSaved(`Saved ${key.label} (${key.api_key_masked}).`);
      onSaved();
    });
  };

  return (
    <form className="form" onSubmit={submit} aria-label="Add an exchange API key" data-testid="add-api-key">
      <h3>Add a key</h3>
      <div className="fields">
        <label>Label<input required maxLength={64} value={label} onChange={(e) => setLabel(e.target.value)} /></label>
        <label>
          Exchange
          <select value="binance" disabled><option value="binance">Binance</option></select>
        </label>
        <label>
          API key
          <input type="password" autoComplete="off" spellCheck={false} required value={apiKey}
            onChange={(e) => setApiKey(e.target.value)} />
        </label>
        <label>
          API secret
          <input type="password" autoComplete="off" spellCheck={false} required value={apiSecret}
            onChange={(e) => setApiSecret(e.target.value)} />
        </label>
      </div>
      <p className="muted">Give the key read and trade rights only, never withdrawals, and restrict it to this server's IP
        at the exchange. Durabot stores it encrypted and never shows it again.</p>
      <ErrorNote message={error} />
      {saved ? <p className="ok" role="status">{saved}</p> : null}
      <div className="button-row">
        <button type="submit" className="primary" disabled={busy}>Save key</button>
      </div>
    </form>
  );
}
