// The exchange in use, the Temporal UI to link sessions to, and the sim's clock for the banner.
import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { call, http, type Schemas } from '../api/client';
import { useInterval } from '../lib/hooks';
import { formatDate, formatTime } from '../lib/format';

type System = Schemas['SystemOut'];

const SystemContext = createContext<System | null>(null);

export function SystemProvider({ children }: { children: ReactNode }) {
  const [system, setSystem] = useState<System | null>(null);
  const load = () => void call(() => http.GET('/api/system')).then(setSystem, () => undefined);
  useEffect(load, []);
  // The sim's market time moves with the replay; a few seconds' lag is fine for a banner.
  useInterval(load, system?.sim ? 3000 : null);
  return <SystemContext.Provider value={system}>{children}</SystemContext.Provider>;
}

export function useSystem(): System | null {
  return useContext(SystemContext);
}

export function temporalLink(system: System | null, workflowId: string): string | null {
  if (!system?.temporal_ui_url) return null;
  const base = system.temporal_ui_url.replace(/\/$/, '');
  return `${base}/namespaces/${encodeURIComponent(system.temporal_namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

export function SimBanner() {
  const system = useSystem();
  if (!system?.sim) return null;
  const { reachable, speed, market_time, replaying } = system.sim;
  return (
    <div className="banner" role="status" data-testid="sim-banner">
      <strong>Local sim exchange</strong>
      {reachable ? (
        <>
          <span>replay speed {speed === 'max' ? 'max' : `×${speed}`}</span>
          <span>market time {formatTime(market_time)}</span>
          {replaying.map((r) => (
            // The virtual clock is shifted onto today: say which real dates are being replayed.
            <span key={`${r.symbol}@${r.interval}`} data-testid="sim-replaying">
              {r.symbol} {r.interval}: real data of {formatTime(r.real_now ?? r.real_from)}
              {r.copy > 0 ? ` (repeat ${r.copy}, prices scaled)` : ''} from {formatDate(r.real_from)} to{' '}
              {formatDate(r.real_to)}
            </span>
          ))}
        </>
      ) : (
        <span>not reachable</span>
      )}
    </div>
  );
}
