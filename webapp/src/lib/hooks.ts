import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { errorText } from '../api/client';

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Loads on mount and on ``reload()``; a late answer of an older load never overwrites a newer one. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const loader = useRef(load);
  loader.current = load;

  const reload = useCallback(() => {
    const mine = ++generation.current;
    setLoading(true);
    loader.current().then(
      (value) => {
        if (mine !== generation.current) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (mine !== generation.current) return;
        setError(errorText(err));
        setLoading(false);
      },
    );
  }, []);

  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(reload, deps);
  return { data, error, loading, reload };
}

/** Re-runs ``fn`` every ``ms`` while mounted. */
export function useInterval(fn: () => void, ms: number | null): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (ms == null) return;
    const id = setInterval(() => saved.current(), ms);
    return () => clearInterval(id);
  }, [ms]);
}

export interface Action {
  busy: boolean;
  error: string | null;
  setError: (error: string | null) => void;
  /** Runs ``action`` (busy meanwhile); a throw becomes ``error``, described by the hook's ``describe``. */
  run: (action: () => Promise<void>) => Promise<void>;
}

/** What a button's action needs: whether it runs now, and what went wrong the last time. */
export function useAction(describe: (err: unknown) => string = errorText): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}

/** A form's check: the request body, or the wrong field (null: the form as a whole) and why. */
export type Checked<B, F> = { body: B; field?: undefined; message?: undefined } | { body?: undefined; field: F | null; message: string };

/** A form's submit that sends only what ``check`` passes: otherwise the wrong field is ``invalid`` (for
 * aria-invalid) and why is the ``error``. */
export function useCheckedSubmit<B, F>(check: () => Checked<B, F>, send: (body: B) => Promise<void>): Action & {
  invalid: F | null;
  submit: (e: FormEvent) => Promise<void>;
} {
  const [invalid, setInvalid] = useState<F | null>(null);
  const action = useAction();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const checked = check();
    setInvalid(checked.field ?? null);
    if (checked.body === undefined) {
      action.setError(checked.message);
      return;
    }
    const body = checked.body;
    await action.run(() => send(body));
  };
  return { ...action, invalid, submit };
}
