// One /ws connection for the signed-in user, shared by every page: pages listen for the event types
// they care about and reload their REST data, so the socket never has to carry whole tables.
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { call, getTokens, http } from '../api/client';
import { LiveSocket, type LiveEvent } from '../lib/socket';
import type { ConnState } from '../lib/wsMachine';

const CHANNELS = ['MarketData', 'ChartUpdate', 'PositionUpdate', 'TradeExecuted', 'AISignalReceived', 'BotStatusUpdate'];

type Listener = (event: LiveEvent) => void;

interface Live {
  state: ConnState;
  attempt: number;
  prices: Readonly<Record<string, number>>;
  listen: (fn: Listener) => () => void;
}

const LiveContext = createContext<Live>({ state: 'idle', attempt: 0, prices: {}, listen: () => () => undefined });

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
  const [prices, setPrices] = useState<Record<string, number>>({});
  const listeners = useRef(new Set<Listener>());
  const [listen] = useState(() => (fn: Listener) => {
    listeners.current.add(fn);
    return () => void listeners.current.delete(fn);
  });

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
          const d = e.data as { symbol: string; price: number };
          setPrices((p) => ({ ...p, [d.symbol]: d.price }));
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

  return <LiveContext.Provider value={{ state, attempt, prices, listen }}>{children}</LiveContext.Provider>;
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
