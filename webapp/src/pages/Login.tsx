import { useState, type FormEvent } from 'react';
import { call, errorText, http, setTokens } from '../api/client';
import { ErrorNote } from '../components/ui';

export function Login() {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'register') await call(() => http.POST('/api/auth/register', { body: { email, password } }));
      const tokens = await call(() => http.POST('/api/auth/login', { body: { email, password } }));
      setTokens({ access_token: tokens.access_token, refresh_token: tokens.refresh_token });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <h1>Durabot</h1>
      <form onSubmit={submit} className="card form" aria-label={mode === 'login' ? 'Log in' : 'Register'}>
        <h2>{mode === 'login' ? 'Log in' : 'Create an account'}</h2>
        <label>
          Email
          <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Password
          <input type="password" autoComplete={mode === 'login' ? 'current-password' : 'new-password'} required
            value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <ErrorNote message={error} />
        <button type="submit" className="primary" disabled={busy}>
          {mode === 'login' ? 'Log in' : 'Register'}
        </button>
        <button type="button" className="link" onClick={() => setMode(mode === 'login' ? 'register' : 'login')}>
          {mode === 'login' ? 'No account? Register' : 'Have an account? Log in'}
        </button>
      </form>
    </main>
  );
}
