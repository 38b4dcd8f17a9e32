import type { ReactNode } from 'react';
import { formatPnl, tone } from '../lib/format';

export function Pnl({ value, digits = 2 }: { value: number | null | undefined; digits?: number }) {
  const text = formatPnl(value, digits);
  // Colour by what is shown: a loss that rounds to 0.00 is not painted red.
  const shown = /^[+−]/.test(text) ? tone(value) : 'flat';
  return <span className={`pnl ${shown}`}>{text}</span>;
}

export function Card({ title, children, actions, wide, id: anchor }: {
  title: string; children: ReactNode; actions?: ReactNode;
  /** Spans every column of a .grid (reports and wide tables). */
  wide?: boolean;
  /** The section's own id, for links to it (/settings#security). */
  id?: string;
}) {
  const id = `card-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section id={anchor} className={wide ? 'card wide' : 'card'} aria-labelledby={id}>
      <header className="card-head">
        <h2 id={id}>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export function Stat({ label, children, testId, value }: {
  label: string; children: ReactNode; testId?: string;
  /** The raw figure behind the text, for tests and tools. */
  value?: number | string | null;
}) {
  return (
    <div className="stat" data-testid={testId} data-value={value ?? undefined}>
      <div className="stat-label">{label}</div>
      <div className="stat-value">{children}</div>
    </div>
  );
}

export function ErrorNote({ message }: { message: string | null | undefined }) {
  if (!message) return null;
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}
