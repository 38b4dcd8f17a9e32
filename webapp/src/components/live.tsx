// One /ws connection for the signed-in user, shared by every page: pages listen for the event types
// they care about and reload their REST data, so the socket never has to carry whole tables.
import { createContext, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { call, getTokens, http } from '../api/client';
import { withQuote, type Quote } from '../lib/metrics';
import { LiveSocket, type LiveEvent } from '../lib/socket';
import type { ConnState } from '../lib/wsMachine';

const CHANNELS = ['MarketData', 'ChartUpdate', 'PositionUpdate', 'TradeExecuted', 'AISignalReceived', 'BotStatusUpdate', 'TuningUpdate', 'OrderUpdate'];

type Listener = (event: LiveEvent) => void;

interface Live {
  state: ConnState;
  attempt: number;
  prices: Readonly<Record<string, number>>;
  quotes: Readonly<Record<string, Quote>>;
  listen: (fn: Listener) => () => void;
}

const LiveContext = createContext<Live>({ state: 'idle', attempt: 0, prices: {}, quotes: {}, listen: () => () => undefined });

export function useLive(): Live {
  return useContext(LiveContext);
}

/** Calls ``fn`` for each live event whose type is in ``types`` (and for a resync). */
export function useLiveEvents(types: readonly string[], fn: (event: LiveEvent) => void): void {
  const { listen } = useLive();
  const saved = useRef(fn);
  saved.current = fn;
  const key = types.join(',');
  useEffect(() => listen((e) => (e.type === 'Resync' || key.split(',').includes(e.type)) && saved.current(e)), [listen, key]);
}

export function LiveProvider({ token, children }: { token: string; children: ReactNode }) {
  const [state, setState] = useState<ConnState>('idle');
  const [attempt, setAttempt] = useState(0);
  const [quotes, setQuotes] = useState<Record<string, Quote>>({});
  const listeners = useRef(new Set<Listener>());
  const [listen] = useState(() => (fn: Listener) => {
    listeners.current.add(fn);
    return () => void listeners.current.delete(fn);
  });

  // The latest stored price seeds each symbol; MarketData of each closed candle moves it on.
  useEffect(() => {
    let live = true;
    void call(() => http.GET('/api/prices')).then(
      (rows) => live && setQuotes((q) => rows.reduce((acc, r) => withQuote(acc, r.symbol, { price: r.price, time: r.time }), q)),
      () => undefined,
    );
    return () => void (live = false);
  }, [token]);

  useEffect(() => {
    const emit = (e: LiveEvent) => listeners.current.forEach((fn) => fn(e));
    const socket = new LiveSocket({
      url: () => {
        const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
        return `${scheme}://${location.host}/ws?token=${encodeURIComponent(getTokens()?.access_token ?? token)}`;
      },
      channels: CHANNELS,
      open: (url) => new WebSocket(url),
      setTimer: (fn, ms) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      onEvent: (e) => {
        if (e.type === 'MarketData') {
          const d = e.data as { symbol: string; price: number; time: number };
          setQuotes((q) => withQuote(q, d.symbol, { price: d.price, time: d.time }));
        }
        emit(e);
      },
      onState: (s, n) => {
        setState(s);
        setAttempt(n);
        if (s === 'unauthorized') {
          // The token expired: any authenticated call refreshes it, which re-runs this effect.
          void call(() => http.GET('/api/auth/me')).catch(() => undefined);
        }
      },
      onResync: () => emit({ type: 'Resync', symbol: null, data: {} }),
    });
    socket.start();
    return () => socket.stop();
  }, [token]);

  const prices = useMemo(() => Object.fromEntries(Object.entries(quotes).map(([s, q]) => [s, q.price])), [quotes]);
  return <LiveContext.Provider value={{ state, attempt, prices, quotes, listen }}>{children}</LiveContext.Provider>;
}

const LABELS: Record<ConnState, string> = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting',
  unauthorized: 'Signed out of live updates',
  stopped: 'Offline',
};

export function ConnectionBadge() {
  const { state, attempt } = useLive();
  const text = state === 'reconnecting' ? `${LABELS[state]} (attempt ${attempt})…` : LABELS[state];
  return (
    <span className={`conn conn-${state}`} role="status" aria-live="polite" data-testid="connection-state" data-state={state}>
      <span className="dot" aria-hidden="true" /> {text}
    </span>
  );
}
