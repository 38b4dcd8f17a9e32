import { useState, type FormEvent } from 'react';
import { call, errorText, http, reasonText, setTokens } from '../api/client';
import { ErrorNote } from '../components/ui';
import { useAction } from '../lib/hooks';
import { codeProblem, isLoginChallenge, normaliseCode, type LoginChallenge } from '../lib/twoFactor';

export function Login() {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [challenge, setChallenge] = useState<LoginChallenge | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'register') await call(() => http.POST('/api/auth/register', { body: { email, password } }));
      const reply = await call(() => http.POST('/api/auth/login', { body: { email, password } }));
      // With two-factor authentication on, the password alone gives no tokens: a code has to follow.
      if (isLoginChallenge(reply)) {
        setPassword('');
        setChallenge(reply);
      } else {
        setTokens({ access_token: reply.access_token, refresh_token: reply.refresh_token });
      }
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  if (challenge) {
    return (
      <main className="login">
        <h1>Durabot</h1>
        <CodeStep challenge={challenge} onBack={() => setChallenge(null)} />
      </main>
    );
  }

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

/** The login's second step: the code from the authenticator app, or a recovery code, answers the challenge. */
function CodeStep({ challenge, onBack }: { challenge: LoginChallenge; onBack: () => void }) {
  const [code, setCode] = useState('');
  const { busy, error, setError, run } = useAction(reasonText);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problem = codeProblem(code);
    if (problem) return setError(problem);
    await run(async () => {
      const tokens = await call(() => http.POST('/api/auth/login/2fa', {
        body: { challenge: challenge.challenge, code: normaliseCode(code) },
      }));
      setTokens({ access_token: tokens.access_token, refresh_token: tokens.refresh_token });
    });
  };

  return (
    <form onSubmit={submit} className="card form" aria-label="Two-factor authentication" noValidate>
      <h2>Two-factor authentication</h2>
      <p className="muted">
        Enter the 6-digit code your authenticator app shows for Durabot. Without your phone, enter one of your
        recovery codes instead (each works once).
      </p>
      <label>
        Authentication code
        <input autoFocus autoComplete="one-time-code" spellCheck={false} maxLength={32} value={code}
          aria-invalid={error ? true : undefined} onChange={(e) => setCode(e.target.value)} />
      </label>
      <ErrorNote message={error} />
      <button type="submit" className="primary" disabled={busy}>Verify</button>
      <button type="button" className="link" onClick={onBack}>Back to log in</button>
    </form>
  );
}
